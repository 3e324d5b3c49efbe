"""Delivery formats and the retrying, bounded channel worker (pure logic; real endpoints are integration)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import urllib.parse
from typing import Any

import pytest

from gulou.devices.registry import Registry
from gulou.rules.engine import Engine
from gulou.rules.notify import (
    Channel,
    ChannelWorker,
    DingTalkChannel,
    MemoryOutbox,
    WeComChannel,
    alert_line,
    alert_topic,
    dingtalk_signed_url,
    sign_body,
    transition_from_json,
)
from tests.unit.rules.test_rules_engine import at, reading, rule


@pytest.fixture
def payload(registry: Registry) -> dict[str, Any]:
    """A firing notification."""
    r = rule("kind: threshold\ndomain: waste\nmetric: temperature\nop: '>='\nlimit: 60",
             message="{site_name}疑似起火 {value:.0f}°C")
    bin_ = registry.get("bin-001-rec")
    assert bin_ is not None
    return Engine([r], registry).process(reading(bin_, at(0), temperature=75.0))[0].to_json()


def test_signature_is_hmac_of_the_body() -> None:
    body = b'{"a": 1}'
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert sign_body("s3cret", body) == f"sha256={expected}"


def test_dingtalk_signed_url() -> None:
    url = dingtalk_signed_url("https://robot.example/send?access_token=x", "SEC", now_ms=1700000000000)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert query["timestamp"] == ["1700000000000"] and query["access_token"] == ["x"]
    digest = hmac.new(b"SEC", b"1700000000000\nSEC", hashlib.sha256).digest()
    assert query["sign"] == [base64.b64encode(digest).decode()]


def test_robot_bodies_are_markdown(payload: dict[str, Any]) -> None:
    ding = DingTalkChannel("https://robot.example/send").body(payload)
    assert ding["msgtype"] == "markdown" and "疑似起火" in ding["markdown"]["title"]
    assert "t-rule" in ding["markdown"]["text"] and "超标倍数" in ding["markdown"]["text"]
    wecom = WeComChannel("https://robot.example/send").body(payload)
    assert wecom["msgtype"] == "markdown" and "疑似起火" in wecom["markdown"]["content"]


def test_topic_and_influx_line(payload: dict[str, Any]) -> None:
    assert alert_topic(payload) == "gulou/alerts/waste/bin-001-rec"
    line = alert_line(payload)
    assert line.startswith("alerts,device=bin-001-rec,domain=waste,rule_id=t-rule,severity=high,site=cp-gd-001,")
    assert "state=firing" in line and "value=75.0" in line and "limit=60.0" in line and "exceedance=0.25" in line
    assert line.endswith(str(int(at(0).timestamp() * 1000)))


def test_transition_round_trip(payload: dict[str, Any]) -> None:
    t = transition_from_json(json.loads(json.dumps(payload)))
    assert t.event == "firing" and t.alert.rule_id == "t-rule" and t.alert.first_seen == at(0)


class Flaky(Channel):
    """Fails the first ``failures`` sends."""

    name = "flaky"

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent: list[str] = []

    async def send(self, payload: dict[str, Any]) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("down")
        self.sent.append(payload["alert_id"])


def test_worker_retries_then_keeps_then_redelivers(payload: dict[str, Any]) -> None:
    async def scenario() -> None:
        channel = Flaky(failures=5)
        outbox = MemoryOutbox()
        worker = ChannelWorker(channel, outbox, attempts=3, backoff_s=0.001, redeliver_s=3600)
        task = asyncio.create_task(worker.run())
        worker.offer(payload)  # fails 3 times → kept
        worker.offer({**payload, "alert_id": "second"})  # fails twice, then delivered
        await asyncio.wait_for(worker.queue.join(), 5)
        assert channel.sent == ["second"]
        assert worker.stats["kept"] == 1 and len(outbox.pending("flaky")) == 1
        assert await worker.redeliver_once() == 1
        assert channel.sent == ["second", payload["alert_id"]] and outbox.pending("flaky") == []
        task.cancel()

    asyncio.run(scenario())


def test_worker_queue_overflow_goes_to_outbox(payload: dict[str, Any]) -> None:
    async def scenario() -> None:
        outbox = MemoryOutbox()
        worker = ChannelWorker(Flaky(0), outbox, queue_size=2)
        for i in range(5):
            worker.offer({**payload, "alert_id": str(i)})  # never blocks
        assert worker.queue.qsize() == 2 and worker.stats["overflow"] == 3
        assert [p["alert_id"] for _, p in outbox.pending("flaky")] == ["2", "3", "4"]

    asyncio.run(scenario())


def test_backoff_is_jittered_and_capped() -> None:
    worker = ChannelWorker(Flaky(0), MemoryOutbox(), backoff_s=1.0, backoff_cap_s=8.0)
    delays = {round(worker.backoff(2), 6) for _ in range(20)}
    assert len(delays) > 1 and all(2.0 <= d <= 4.0 for d in delays)
    assert all(4.0 <= worker.backoff(10) <= 8.0 for _ in range(20))
