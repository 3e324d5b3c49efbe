"""The workflow sending real HTTP requests to local DingTalk- and WeCom-shaped robots that enforce their limit."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from gulou.workflow import db
from gulou.workflow.policy import load_policy
from gulou.workflow.senders import DingTalkSender, WeComSender
from gulou.workflow.service import WorkflowService
from gulou.workflow.store import WorkflowStore
from tests.robots import robot_server
from tests.waiting import wait_for_async
from tests.workflow_data import payload

pytestmark = pytest.mark.integration
# A scaled-down minute so the test runs in seconds: 4 messages per 3 s per robot.
ROUTES = """
channels:
  dingtalk: {per_minute: 4, window_s: 3, group_wait_s: 0.3, storm_threshold: 5, urgent_reserve: 1}
  wecom: {per_minute: 4, window_s: 3, group_wait_s: 0.3, storm_threshold: 5, urgent_reserve: 1}
routes:
- {name: urgent, match: {severity: [high, critical]}, channels: [dingtalk, wecom], mention: true}
- {name: env, match: {domain: [air]}, channels: [dingtalk]}
- {name: city, match: {domain: [parking, waste], severity: [informational, low]}, channels: [wecom]}
default: {name: default, channels: [dingtalk]}
"""


def test_flood_reaches_both_robots_within_their_limit_and_nothing_is_lost(tmp_path: Path) -> None:
    (tmp_path / "routes.yaml").write_text(ROUTES, encoding="utf-8")
    store = WorkflowStore(f"sqlite:///{tmp_path / 'gulou.db'}")
    with robot_server("dingtalk", 4, 3.0) as ding, robot_server("wecom", 4, 3.0) as wecom:
        service = WorkflowService(store, load_policy(tmp_path), {"dingtalk": DingTalkSender(ding.url),
                                                                  "wecom": WeComSender(wecom.url)},
                                  flush_s=0.2)

        now = datetime.now(UTC)  # fresh alerts: escalation (15 min for critical) stays out of this test

        async def scenario() -> None:
            runner = asyncio.create_task(service.run())
            for n in range(60):
                service.on_transition(payload(device=f"pk-{n:03d}", severity="informational",
                                              site_name=f"*停车场*{n}", first_seen=now))
            for n in range(30):
                service.on_transition(payload(device=f"aq-{n:03d}", rule=f"air-rule-{n % 12}", severity="low",
                                              domain="air", first_seen=now))
            for n in range(3):
                service.on_transition(payload(device=f"bin-{n}", rule="waste-bin-fire-temperature",
                                              severity="critical", domain="waste", first_seen=now))
            await wait_for_async(lambda: not store.outbox.counts(), 90, "the outbox did not drain")
            runner.cancel()

        asyncio.run(scenario())
    try:
        for robot in (ding, wecom):
            assert robot.refused == 0 and robot.malformed == []
            assert robot.max_in_any_window() <= 4
        with store.reader.connect() as conn:
            carried = dict(conn.execute(sa.select(db.messages.c.channel, sa.func.sum(db.messages.c["items"]))
                                        .group_by(db.messages.c.channel)).all())
            first_critical = conn.execute(sa.select(sa.func.min(db.outbox.c.message)).where(
                db.outbox.c.channel == "dingtalk", db.outbox.c.severity == "critical")).scalar_one()
            last_minor = conn.execute(sa.select(sa.func.max(db.outbox.c.message)).where(
                db.outbox.c.channel == "dingtalk", db.outbox.c.severity == "low")).scalar_one()
        assert carried == {"dingtalk": 30 + 3, "wecom": 60 + 3}
        assert len(ding.accepted) < 33 and len(wecom.accepted) < 63, "grouping made fewer messages than alerts"
        assert first_critical < last_minor, "the critical alerts waited behind minor ones"
        critical = [b for b in ding.accepted if b["at"]["atMobiles"]]
        assert critical and all("@" + b["at"]["atMobiles"][0] in b["markdown"]["text"] for b in critical)
        assert any("共60个设备" in t for t in wecom.texts())
        assert not any("*停车场*" in t for t in wecom.texts())
    finally:
        store.close()
