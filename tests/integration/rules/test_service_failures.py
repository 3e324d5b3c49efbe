"""The rules service through its failures: shutdown saves the engine state, a restart drops the state of rules
that no longer exist, a full intake queue is counted, and the MQTT reader comes back after a broker restart."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import pytest

from gulou.devices.contract import Reading, telemetry_topic
from gulou.devices.registry import Device, Registry
from gulou.rules.alert_store import AlertStore
from gulou.rules.model import AnyRule, parse_rules
from gulou.rules.service import MqttSource, RulesService
from gulou.settings import Settings, parse_broker_url
from tests.servers import Mosquitto
from tests.waiting import wait_for_async

pytestmark = pytest.mark.integration
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
COMMON = {"domain": "waste", "device_type": "smart_bin", "severity": "high", "message": "{site_name} {value}",
          "message_en": "{value}", "source": "test [U]"}


def rules(*names: str) -> list[AnyRule]:
    """A hot-bin threshold rule and a mean-ammonia window rule, by id."""
    body = {
        "hot": {"kind": "threshold", "metric": "temperature", "op": ">=", "limit": 60},
        "smelly": {"kind": "window", "metric": "nh3", "agg": "mean", "window_s": 3600, "min_count": 4, "op": ">",
                   "limit": 1.5},
    }
    doc = {"rules": [{"id": n, **COMMON, **body[n]} for n in names]}
    return parse_rules(json.dumps(doc, ensure_ascii=False), "test.yaml")


def bin_reading(device: Device, minutes: int, temperature: float = 20.0, nh3: float = 2.0) -> Reading:
    return Reading(device=device, ts=T0 + timedelta(minutes=minutes), seq=None,
                   values={"temperature": temperature, "nh3": nh3, "fill_level": 0.3})


async def _run_until_drained(service: RulesService, items: list[Reading]) -> None:
    task = asyncio.create_task(service.run())
    for item in items:
        assert service.offer(item)
    await wait_for_async(lambda: service.engine.stats.readings >= len(items), 10, "every item evaluated")
    assert await service.drain(timeout=10)
    service.stop()
    await asyncio.wait_for(task, 10)


def test_shutdown_saves_the_engine_state(registry: Registry, tmp_path: Path) -> None:
    device = registry.get("bin-001-rec")
    assert device is not None
    settings = Settings(store=tmp_path / "gulou.db")
    store = AlertStore(settings.store)
    # The periodic save is an hour away: only the shutdown can have written what is found below.
    first = RulesService(settings, registry, rules("hot", "smelly"), store=store, channels=[], save_every_s=3600)
    asyncio.run(_run_until_drained(first, [bin_reading(device, m, 70.0 if m == 2 else 20.0) for m in range(3)]))
    saved = store.load_state()
    assert saved is not None, "nothing saved on shutdown"
    assert [a["rule_id"] for a in saved["alerts"]] == ["hot"]
    assert "smelly|bin-001-rec" in saved["state"]
    store.close()

    store = AlertStore(settings.store)
    second = RulesService(settings, registry, rules("hot", "smelly"), store=store, channels=[])
    # The hot alert is still active (not fired again); the window goes on with its three readings: a fourth fires.
    out = second.engine.process(bin_reading(device, 3, 75.0))
    assert [(t.event, t.alert.rule_id) for t in out] == [("firing", "smelly")]
    store.close()


def test_a_restart_drops_the_state_of_deleted_rules(registry: Registry, tmp_path: Path) -> None:
    device = registry.get("bin-001-rec")
    assert device is not None
    settings = Settings(store=tmp_path / "gulou.db")
    store = AlertStore(settings.store)
    first = RulesService(settings, registry, rules("hot", "smelly"), store=store, channels=[], save_every_s=3600)
    asyncio.run(_run_until_drained(first, [bin_reading(device, m, 70.0) for m in range(3)]))
    store.close()

    store = AlertStore(settings.store)
    without_hot = RulesService(settings, registry, rules("smelly"), store=store, channels=[], save_every_s=3600)
    assert without_hot.engine.active() == []
    snap = without_hot.engine.snapshot()
    assert not [k for k in snap["state"] if k.startswith("hot|")] and snap["alerts"] == []
    assert "smelly|bin-001-rec" in snap["state"]
    asyncio.run(_run_until_drained(without_hot, []))  # shut down: the pruned state is what is saved now
    store.close()

    store = AlertStore(settings.store)
    back = RulesService(settings, registry, rules("hot", "smelly"), store=store, channels=[])
    # The rule returned without its old alert: the same hot reading is a new firing; the window kept its three
    # readings through both restarts, so a fourth fires it.
    out = back.engine.process(bin_reading(device, 3, 70.0))
    assert sorted((t.event, t.alert.rule_id) for t in out) == [("firing", "hot"), ("firing", "smelly")]
    store.close()


def test_a_full_intake_queue_counts_what_it_drops(registry: Registry, tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    device = registry.get("bin-001-rec")
    assert device is not None
    service = RulesService(Settings(store=tmp_path / "gulou.db"), registry, rules("hot"), channels=[], queue_size=3)
    with caplog.at_level(logging.WARNING, logger="gulou.rules.service"):
        offered = [service.offer(bin_reading(device, m, 70.0)) for m in range(5)]
    assert offered == [True, True, True, False, False]
    assert service.dropped == 2 and service.stats()["dropped"] == 2 and service.stats()["queued"] == 3
    # Logged once, not once per dropped item.
    assert [r.getMessage() for r in caplog.records] == ["rules queue full (3): 1 item(s) not evaluated so far"]

    async def evaluate() -> None:
        task = asyncio.create_task(service.run())
        await wait_for_async(lambda: service.engine.stats.readings == 3, 10, "the three queued items evaluated")
        service.stop()
        await asyncio.wait_for(task, 10)

    asyncio.run(evaluate())
    assert service.engine.stats.readings == 3 and service.dropped == 2


def test_the_reader_reconnects_after_a_broker_restart(own_mosquitto: Mosquitto, registry: Registry,
                                                      tmp_path: Path) -> None:
    device = registry.get("bin-001-rec")
    assert device is not None
    settings = Settings(broker=own_mosquitto.url, store=tmp_path / "gulou.db")
    broker = parse_broker_url(own_mosquitto.url)
    service = RulesService(settings, registry, rules("hot"), channels=[])
    source = MqttSource(settings, broker, service, client_id="it-rules-reconnect")
    topic = telemetry_topic(device.domain, device.id)

    async def publish(minutes: int, temperature: float) -> None:
        body = {"ts": (T0 + timedelta(minutes=minutes)).isoformat(), "temperature": temperature, "fill_level": 0.3}
        async with aiomqtt.Client(broker.host, broker.port, identifier="it-rules-reconnect-pub") as pub:
            await pub.publish(topic, json.dumps(body), qos=1)

    async def body() -> None:
        tasks = [asyncio.create_task(service.run()), asyncio.create_task(source.run())]
        await wait_for_async(source.connected.is_set, 10, "the reader connected")
        await publish(0, 20.0)
        await wait_for_async(lambda: service.engine.stats.readings == 1, 10, "the first reading evaluated")
        own_mosquitto.stop()
        await wait_for_async(lambda: not source.connected.is_set(), 30, "the reader noticing the broker is gone")
        own_mosquitto.start()
        await wait_for_async(lambda: source.connected.is_set() and source.reconnects >= 1, 60, "the reader back")
        await publish(5, 70.0)
        await wait_for_async(lambda: service.engine.stats.transitions == 1, 10, "the alert from after the restart")
        service.stop()
        await asyncio.wait_for(tasks[0], 10)
        tasks[1].cancel()

    asyncio.run(body())
    assert service.engine.stats.readings == 2 and [a["rule_id"] for a in service.engine.active()] == ["hot"]
    assert source.rejected == 0
