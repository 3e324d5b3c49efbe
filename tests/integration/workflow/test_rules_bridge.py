"""Readings through the rules service into the workflow channel, out to local robots within their limit."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gulou.channels.log import LogChannel
from gulou.devices.contract import Reading
from gulou.devices.registry import Registry
from gulou.rules.model import load_rules
from gulou.rules.service import RulesService
from gulou.settings import Settings
from gulou.workflow.channel import WorkflowChannel
from gulou.workflow.policy import load_policy
from gulou.workflow.senders import DingTalkSender, WeComSender
from gulou.workflow.service import WorkflowService
from gulou.workflow.store import AlertFilter, WorkflowStore
from tests.robots import robot_server
from tests.waiting import wait_for_async

pytestmark = pytest.mark.integration
ROUTES = """
channels:
  dingtalk: {per_minute: 5, window_s: 2, group_wait_s: 0.3}
  wecom: {per_minute: 5, window_s: 2, group_wait_s: 0.3}
routes:
- {name: urgent, match: {severity: [high, critical]}, channels: [dingtalk, wecom], mention: true}
- {name: city, match: {domain: [parking, waste]}, channels: [wecom]}
default: {name: default, channels: [dingtalk]}
"""


def test_engine_transitions_become_workflow_alerts_and_grouped_messages(registry: Registry, tmp_path: Path) -> None:
    (tmp_path / "routes.yaml").write_text(ROUTES, encoding="utf-8")
    store_path = tmp_path / "gulou.db"
    lots = [d for d in registry if d.type == "parking_lot"][:20]
    bin_ = next(d for d in registry if d.type == "smart_bin")
    now = datetime.now(UTC).replace(microsecond=0)
    with robot_server("dingtalk", 5, 2.0) as ding, robot_server("wecom", 5, 2.0) as wecom:
        store = WorkflowStore(f"sqlite:///{store_path}")
        workflow = WorkflowService(store, load_policy(tmp_path), {"dingtalk": DingTalkSender(ding.url),
                                                                   "wecom": WeComSender(wecom.url)}, flush_s=0.2)
        rules = RulesService(Settings(store=store_path), registry, load_rules(),
                             channels=[LogChannel(), WorkflowChannel(workflow)], renotify_s=None)

        async def scenario() -> None:
            runner = asyncio.create_task(rules.run())
            for lot in lots:
                total = lot.site.capacity or 100
                rules.offer(Reading(lot, now, None, {"total_spots": total, "occupied_spots": total}))
            rules.offer(Reading(bin_, now, None, {"fill_level": 0.3, "weight": 40.0, "temperature": 75.0,
                                                  "lid_open": False, "nh3": 0.2, "h2s": 0.01}))
            await wait_for_async(lambda: len(store.alerts(limit=1000)) >= 2 * len(lots) + 1, 30, "alerts recorded")
            await wait_for_async(lambda: not store.outbox.counts(), 30, "the outbox drained")
            rules.stop()
            await runner

        asyncio.run(scenario())
    fire = store.alerts(AlertFilter(rule_id="waste-bin-fire-temperature"))
    assert [a.device_id for a in fire] == [bin_.id] and fire[0].severity == "critical"
    assert {a.rule_id for a in store.alerts(AlertFilter(domain="parking"), limit=1000)} == {
        "parking-tight", "parking-full"}
    assert ding.refused == wecom.refused == 0
    assert any(b["at"]["atMobiles"] for b in ding.accepted), "the critical alert mentions the duty officer"
    texts = wecom.texts()
    for rule in ("parking-tight", "parking-full"):
        assert any(f"告警风暴：{rule}" in t for t in texts), texts
    assert len(texts) < 2 * len(lots), "alerts that arrive together go out together"
    store.close()
