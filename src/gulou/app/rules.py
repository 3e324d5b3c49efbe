"""``gulou rules run``: the rules engine alone, reading telemetry and status from MQTT."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from gulou.app.broker import broker_for
from gulou.devices.registry import Registry
from gulou.ops.service import Endpoint
from gulou.rules.alert_store import AlertStore
from gulou.rules.model import AnyRule
from gulou.rules.service import Clock, MqttSource, RulesService
from gulou.settings import Settings
from gulou.sinks.influx import InfluxSink


async def run_rules(settings: Settings, registry: Registry, rule_set: Sequence[AnyRule], clock: Clock,
                    announce: Callable[[str], None]) -> None:
    """Run the engine, its delivery and its MQTT reader until cancelled."""
    async with broker_for(settings, announce) as broker:
        influx = InfluxSink.from_settings(settings) if settings.influx.url else None
        store = AlertStore(settings.store)
        service = RulesService(settings, registry, rule_set, store=store, influx=influx, broker=broker.address,
                               clock=clock)
        source = MqttSource(settings, broker.address, service)
        announce(f"rules engine: {len(rule_set)} rules, {len(registry)} devices, store {settings.store}")
        ops = Endpoint().add_rules(service.stats, source.connected.is_set).serve(settings.ops.listen) \
            if settings.ops.listen else None
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(service.run(), name="rules-service")
                tg.create_task(source.run(), name="rules-mqtt-reader")
        finally:
            if ops is not None:
                ops.stop()
            store.close()
