"""The workflow service on a real SQLite store: routing, silences, grouping, limits, escalation, dispatch."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from gulou.workflow import transitions
from gulou.workflow.digest import sent_in_window
from gulou.workflow.dispatch import Dispatcher
from gulou.workflow.model import SilenceScope
from gulou.workflow.policy import load_policy
from gulou.workflow.render import RobotMessage
from gulou.workflow.service import WorkflowService
from gulou.workflow.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from gulou.workflow.store import WorkflowStore
from tests.workflow_data import T0, minutes, payload

pytestmark = pytest.mark.integration


class Robot:
    """Stands in for a channel: keeps what it was given, or refuses while ``down``."""

    def __init__(self, clock: Clock) -> None:
        self.clock, self.down = clock, False
        self.messages: list[Any] = []
        self.at: list[Any] = []

    async def send_message(self, message: RobotMessage) -> None:
        if self.down:
            raise ConnectionError("robot unreachable")
        self.messages.append(message)
        self.at.append(self.clock())


class Clock:
    """A hand-moved clock."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def wf(tmp_path: Path) -> Iterator[WorkflowStore]:
    store = WorkflowStore(f"sqlite:///{tmp_path / 'gulou.db'}")
    yield store
    store.close()


def service(wf: WorkflowStore, clock: Clock, **kw: object) -> tuple[WorkflowService, Robot, Robot]:
    ding, wecom = Robot(clock), Robot(clock)
    svc = WorkflowService(wf, load_policy(), {"dingtalk": ding, "wecom": wecom}, clock=clock, wall=clock,
                          **kw)  # type: ignore[arg-type]
    return svc, ding, wecom


def test_critical_alert_goes_out_at_once_with_the_duty_officer_mentioned(wf: WorkflowStore, clock: Clock) -> None:
    svc, ding, wecom = service(wf, clock)
    alert = svc.on_transition(payload(rule="waste-bin-fire-temperature", severity="critical", domain="waste"))
    assert asyncio.run(svc.flush()) == 2
    assert [m.kind for m in ding.messages] == ["single"] and len(wecom.messages) == 1
    assert [p.id for p in ding.messages[0].mentions] == ["duty-day"]
    assert [h.action for h in wf.history(alert.id)] == ["fired", "notified", "notified"]


def test_silenced_device_is_recorded_not_sent(wf: WorkflowStore, clock: Clock) -> None:
    svc, ding, wecom = service(wf, clock)
    wf.silences.create(SilenceScope(device_id="pk-001"), T0 - minutes(5), T0 + minutes(60), "设备检修", "张三", T0)
    alert = svc.on_transition(payload(severity="critical"))
    svc.on_transition(payload("resolved", severity="critical", resolved_at=T0 + minutes(3)))
    clock.advance(minutes=5)
    asyncio.run(svc.flush())
    assert ding.messages == wecom.messages == [] and wf.outbox.counts() == {}
    stored = wf.get(alert.id)
    assert stored.silence_id is not None and stored.condition == "resolved"
    assert [h.action for h in wf.history(alert.id)] == ["fired", "silenced", "resolved"]


def test_storm_and_flood_respect_twenty_a_minute_and_lose_nothing(wf: WorkflowStore, clock: Clock) -> None:
    svc, ding, _ = service(wf, clock)
    for n in range(120):
        svc.on_transition(payload(device=f"pk-{n:03d}", severity="informational"))
    for n in range(60):
        svc.on_transition(payload(device=f"aq-{n:03d}", rule=f"air-rule-{n}", severity="low", domain="air"))
    for _ in range(300):
        asyncio.run(svc.flush())
        clock.advance(seconds=2)
    assert all(sent_in_window(ding.at, at) <= 20 for at in ding.at)
    assert wf.outbox.counts() == {}
    assert sum(m.count for m in ding.messages) == 60 + 0  # parking goes to wecom, air to dingtalk
    assert len(ding.messages) < 60


def test_critical_is_not_held_behind_a_minor_flood(wf: WorkflowStore, clock: Clock) -> None:
    svc, ding, _ = service(wf, clock)
    for n in range(200):
        svc.on_transition(payload(device=f"aq-{n:03d}", rule=f"air-rule-{n}", severity="low", domain="air"))
        clock.advance(seconds=1)
        asyncio.run(svc.flush())
    fire_at = clock()
    svc.on_transition(payload(device="bin-1", rule="waste-bin-fire-temperature", severity="critical",
                              domain="waste"))
    asyncio.run(svc.flush())
    assert ding.at[-1] == fire_at and ding.messages[-1].urgent


def test_unacknowledged_critical_escalates_step_by_step_and_ack_stops_it(wf: WorkflowStore, clock: Clock) -> None:
    svc, ding, _ = service(wf, clock)
    alert = svc.on_transition(payload(severity="critical", first_seen=T0))
    asyncio.run(svc.flush())
    clock.advance(minutes=14)
    assert svc.escalate() == 0
    clock.advance(minutes=1)
    assert svc.escalate() == 1 and svc.escalate() == 0
    asyncio.run(svc.flush())
    escalation = ding.messages[-1]
    assert escalation.kind == "escalation" and [p.id for p in escalation.mentions] == ["duty-day"]
    clock.advance(minutes=15)
    assert svc.escalate() == 1
    asyncio.run(svc.flush())
    assert [p.id for p in ding.messages[-1].mentions] == ["section-chief"] and "第2级" in ding.messages[-1].text
    wf.act(alert.id, lambda a: transitions.acknowledge(a, "科长", None, clock()))
    clock.advance(minutes=60)
    assert svc.escalate() == 0
    assert wf.get(alert.id).escalation_level == 2


def test_acknowledged_alert_is_not_renotified_and_closed_one_not_at_all(wf: WorkflowStore, clock: Clock) -> None:
    svc, ding, _ = service(wf, clock)
    alert = svc.on_transition(payload(severity="high", domain="air", rule="air-aqi-over-200"))
    asyncio.run(svc.flush())
    wf.act(alert.id, lambda a: transitions.acknowledge(a, "张三", None, clock()))
    svc.on_transition(payload("renotify", severity="high", domain="air", rule="air-aqi-over-200"))
    wf.act(alert.id, lambda a: transitions.close(a, "张三", "已处置", clock()))
    svc.on_transition(payload("resolved", severity="high", domain="air", rule="air-aqi-over-200",
                              resolved_at=T0 + minutes(30)))
    clock.advance(minutes=2)
    asyncio.run(svc.flush())
    assert len(ding.messages) == 1 and wf.outbox.counts() == {}


def test_robot_outage_keeps_items_and_sends_them_later(wf: WorkflowStore, clock: Clock) -> None:
    svc, ding, _ = service(wf, clock)
    ding.down = True
    svc.on_transition(payload(severity="critical", domain="air", rule="air-aqi-over-300"))
    assert asyncio.run(svc.flush()) == 1  # wecom took it; dingtalk failed
    assert wf.outbox.counts() == {"dingtalk": 1}
    ding.down = False
    asyncio.run(svc.flush())
    assert ding.messages == [], "a failed channel waits for its retry time"
    clock.advance(minutes=2)
    asyncio.run(svc.flush())
    assert len(ding.messages) == 1 and wf.outbox.counts() == {}


class _Dispatch(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, object]]] = []
    secret = "wo-secret"
    fail = 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if _Dispatch.fail:
            _Dispatch.fail -= 1
            self.send_response(502)
            self.end_headers()
            return
        verify(self.secret, body, self.headers[TIMESTAMP_HEADER], self.headers[SIGNATURE_HEADER],
               max_age_s=10 ** 10)
        _Dispatch.received.append(json.loads(body))
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


def test_dispatch_route_raises_a_signed_work_order(wf: WorkflowStore, clock: Clock) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Dispatch)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/orders"
        svc, _, _ = service(wf, clock, dispatcher=Dispatcher(url, "wo-secret", callback_url="http://api/cb"))
        _Dispatch.fail = 1
        alert = svc.on_transition(payload(rule="waste-bin-overflow", severity="medium", domain="waste"))
        assert asyncio.run(svc.dispatch_due()) == 0
        assert wf.get(alert.id).work_order_status == "pending"
        clock.advance(minutes=20)
        assert asyncio.run(svc.dispatch_due()) == 1
        order = wf.work_orders.get(wf.get(alert.id).work_order_id or "")
        assert order.status == "sent" and order.attempts == 1
        sent = _Dispatch.received[-1]
        assert sent["work_order_id"] == order.id and sent["callback_url"] == "http://api/cb"
        assert sent["alert"]["rule_id"] == "waste-bin-overflow"  # type: ignore[index]
    finally:
        server.shutdown()
        server.server_close()
