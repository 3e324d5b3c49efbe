"""The rules service's side of exactly-once delivery: channels skipped on dispatch, the delivery listener, outboxes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Self

from gulou.channels.base import Channel, ChannelContext
from gulou.channels.outbox import MemoryOutbox, StoreOutbox
from gulou.devices.registry import Registry
from gulou.rules.alert_store import AlertStore
from gulou.rules.alerts import AlertTransition
from gulou.rules.service import RulesService
from gulou.settings import Settings


class Recording(Channel):
    """Records what it sends."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[str] = []

    @classmethod
    def from_settings(cls, settings: Settings, context: ChannelContext) -> Self | None:
        return None

    async def send(self, transition: AlertTransition) -> None:
        self.sent.append(transition.alert.alert_id)


def test_dispatch_skips_the_named_channels_and_reports_each_delivery(registry: Registry,
                                                                      fired: AlertTransition) -> None:
    mqtt, webhook = Recording("mqtt"), Recording("webhook")
    service = RulesService(Settings(), registry, [], channels=[mqtt, webhook])
    heard: list[tuple[str, str]] = []
    service.on_delivered(lambda name, t: heard.append((name, t.alert.alert_id)))

    async def scenario() -> None:
        tasks = [asyncio.create_task(w.run()) for w in service.workers]
        service.dispatch([fired], skip={"mqtt"})
        await asyncio.wait_for(asyncio.gather(*(w.queue.join() for w in service.workers)), 5)
        for t in tasks:
            t.cancel()

    asyncio.run(scenario())
    assert mqtt.sent == [] and webhook.sent == [fired.alert.alert_id]
    assert heard == [("webhook", fired.alert.alert_id)]


def test_the_outbox_is_durable_unless_told_otherwise(registry: Registry, tmp_path: Path) -> None:
    store = AlertStore(tmp_path / "alerts.db")
    try:
        durable = RulesService(Settings(), registry, [], store=store, channels=[Recording("webhook")])
        assert isinstance(durable.workers[0].outbox, StoreOutbox)
        on_bus = RulesService(Settings(), registry, [], store=store, channels=[Recording("webhook")],
                              durable_outbox=False)
        assert isinstance(on_bus.workers[0].outbox, MemoryOutbox)
    finally:
        store.close()
