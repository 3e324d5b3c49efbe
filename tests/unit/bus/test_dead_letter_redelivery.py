"""A dead letter the broker redelivers after a collector died keeps its id; the same broken bytes sent again do not."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gulou.bus.bridge import BusBridge
from gulou.bus.ledger import DeadLetterIds
from gulou.bus.memory import InProcessBus
from gulou.devices.registry import Registry
from gulou.settings import Settings
from gulou.sinks.embedded import EmbeddedStore
from gulou.sources.base import Delivery, SourceOptions
from gulou.sources.mqtt import MqttSource

TOPIC = "gulou/air/aq-001/telemetry"
BROKEN = b'{"ts": 1, broken'


def _source(slot: str) -> MqttSource:
    source = MqttSource.from_settings(Settings(broker="mqtt://127.0.0.1:1883"), SourceOptions(slot, "collectors"))
    assert source is not None
    return source


async def _publish(bridge: BusBridge, deliveries: list[Delivery]) -> tuple[int, int]:
    """What the stream made of one batch: (newly stored, duplicates)."""
    before = bridge.totals.published, bridge.totals.duplicates
    assert await bridge.publish_batch(deliveries, asyncio.Event())
    return bridge.totals.published - before[0], bridge.totals.duplicates - before[1]


def test_mqtt_redelivery_key_is_client_and_packet_id() -> None:
    source = _source("gulou-ingest-0")
    assert source.redelivery_key(Delivery(TOPIC, b"", 0.0, (7, 1))) == "gulou-ingest-0:7"
    assert source.redelivery_key(Delivery(TOPIC, b"", 0.0, (7, 0))) is None  # QoS 0 is never redelivered


def test_a_restarted_slot_republishes_a_redelivered_dead_letter_under_its_first_id(
        registry: Registry, tmp_path: Path) -> None:
    asyncio.run(_restarted_slot(registry, tmp_path))


async def _restarted_slot(registry: Registry, tmp_path: Path) -> None:
    bus = InProcessBus(wait_for=())
    store = EmbeddedStore(tmp_path / "collector-0.db")
    first = BusBridge(_source("gulou-ingest-0"), registry, bus, store=store)
    assert await _publish(first, [Delivery(TOPIC, BROKEN, 1000.0, (41, 1))]) == (1, 0)
    # The process dies after the stream's ack, before its MQTT ack; the slot restarts with a new process.
    again = BusBridge(_source("gulou-ingest-0"), registry, bus, store=store)
    redelivered = Delivery(TOPIC, BROKEN, 1009.5, (41, 1), redelivered=True)
    assert await _publish(again, [redelivered]) == (0, 1), "the stream drops the copy: counted once"
    assert again.totals.dead_ids_reused == 1
    # The same bytes arriving afresh (another packet id, or no DUP flag) are another message.
    assert await _publish(again, [Delivery(TOPIC, BROKEN, 1010.0, (42, 1))]) == (1, 0)
    assert await _publish(again, [Delivery(TOPIC, BROKEN, 1011.0, (41, 1))]) == (1, 0)
    # Another slot's packet 41 is not this one's.
    other = BusBridge(_source("gulou-ingest-1"), registry, bus, store=store)
    assert await _publish(other, [Delivery(TOPIC, BROKEN, 1012.0, (41, 1), redelivered=True)]) == (1, 0)
    store.close()


def test_ids_older_than_the_stream_window_are_forgotten(tmp_path: Path) -> None:
    ids = DeadLetterIds(tmp_path / "c.db", keep_s=120)
    ids.remember([("c:1", TOPIC, BROKEN, "d:first")], now_ms=1_000_000)
    assert ids.recall("c:1", TOPIC, BROKEN, now_ms=1_000_000 + 119_000) == "d:first"
    assert ids.recall("c:1", TOPIC, b"other bytes", now_ms=1_000_001) is None
    assert ids.recall("c:1", TOPIC, BROKEN, now_ms=1_000_000 + 121_000) is None
    ids.remember([("c:2", TOPIC, BROKEN, "d:second")], now_ms=1_000_000 + 121_000)
    count = ids._db.execute("SELECT count(*) FROM bus_dead_ids").fetchone()[0]
    assert count == 1, "the expired entry was pruned"
    ids.close()
