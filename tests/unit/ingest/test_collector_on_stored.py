"""``on_stored`` sees only durably stored readings: at once, after a spool replay, never when refused."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from gulou.devices.contract import SINK_REJECTED, Reading, StatusUpdate
from gulou.devices.registry import Registry
from gulou.ingest.collector import Collector, CollectorConfig
from gulou.ingest.spool import DurableWriter, Spool
from gulou.settings import Settings
from gulou.sinks.embedded import EmbeddedStore
from gulou.sources.base import Delivery, Source, SourceOptions
from gulou.tsdb.records import Batch
from gulou.tsdb.writer import Sink, SinkError, SinkRejected

NOW_MS = int(time.time() * 1000) - 3_600_000  # an hour ago: valid, not in the future


class MemorySource(Source):
    """Deliveries pushed by the test; acknowledgements recorded."""

    name = "memory"

    def __init__(self) -> None:
        self.id = "mem-collector"
        self.max_in_flight = 100
        self.acked: list[object] = []
        self._deliver: Callable[[Delivery], None] | None = None
        self._sent = 0

    @classmethod
    def from_settings(cls, settings: Settings, options: SourceOptions) -> MemorySource | None:
        return None

    def start(self, deliver: Callable[[Delivery], None]) -> None:
        self._deliver = deliver

    def send(self, topic: str, body: dict[str, object]) -> None:
        assert self._deliver is not None, "collector not started"
        self._sent += 1
        self._deliver(Delivery(topic, json.dumps(body).encode(), time.time(), token=self._sent))

    def all_acked(self) -> bool:
        return len(self.acked) == self._sent

    def wait_connected(self, timeout: float) -> bool:
        return True

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        self.acked.extend(d.token for d in deliveries)

    def pause(self) -> None:
        """Nothing to pause: the test stops sending."""

    def stop(self) -> None:
        """Nothing to close."""

    @property
    def connected(self) -> bool:
        return True

    @property
    def stalled(self) -> bool:
        return False

    @property
    def reconnects(self) -> int:
        return 0

    @property
    def last_message_at(self) -> float | None:
        return None


class SwitchableSink(Sink):
    """A remote store that is up, down (outage) or refusing the data, as the test sets it."""

    name = "switchable"

    def __init__(self) -> None:
        self.state = "up"
        self.batches: list[Batch] = []

    def write(self, batch: Batch) -> None:
        if self.state == "down":
            raise SinkError("connection refused")
        if self.state == "refuse":
            raise SinkRejected("HTTP 400: field type conflict")
        self.batches.append(batch)

    def stored_devices(self) -> list[tuple[str, int]]:
        return [(p.device_id, p.ts_ms) for b in self.batches for p in b.points]

    def flush(self) -> None:
        """Writes are synchronous."""

    def close(self) -> None:
        """Nothing to close."""


class Seen:
    """What on_stored received, and what the sink held at that moment."""

    def __init__(self, sink: SwitchableSink | None) -> None:
        self.sink = sink
        self.items: list[Reading | StatusUpdate] = []
        self.sink_had: list[int] = []
        self._lock = threading.Lock()

    def __call__(self, items: list[Reading | StatusUpdate]) -> None:
        with self._lock:
            self.items.extend(items)
            if self.sink is not None:
                self.sink_had.append(len(self.sink.stored_devices()))

    def keys(self) -> list[tuple[str, int]]:
        with self._lock:
            return [(i.device.id, int(i.ts.timestamp() * 1000)) for i in self.items]


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.01)


@pytest.fixture
def air_topics(registry: Registry) -> list[str]:
    return [f"gulou/air/{d.id}/telemetry" for d in registry if d.type == "air_station"][:5]


def send_readings(source: MemorySource, topics: list[str], offset: int) -> list[tuple[str, int]]:
    """One reading per topic; returns their (device, ts)."""
    keys = []
    for n, topic in enumerate(topics):
        ts = NOW_MS + (offset + n) * 1000
        source.send(topic, {"ts": ts, "pm25": 30.0 + n})
        keys.append((topic.split("/")[2], ts))
    return keys


Rig = tuple[MemorySource, SwitchableSink, Seen, Collector, EmbeddedStore]


@pytest.fixture
def rig(registry: Registry, tmp_path: Path) -> Iterator[Rig]:
    """A collector with a remote sink behind a spool, replaying with almost no backoff."""
    source, sink = MemorySource(), SwitchableSink()
    seen = Seen(sink)
    store = EmbeddedStore(tmp_path / "g.db")
    writer = DurableWriter(sink, Spool(tmp_path / "spool", 1 << 20), retry_initial_s=0.01, retry_max_s=0.05)
    collector = Collector(source, registry, store, writer=writer,
                          config=CollectorConfig(batch_wait_s=0.01, health_interval_s=60), on_stored=seen)
    collector.start()
    yield source, sink, seen, collector, store
    collector.stop()
    store.close()


def test_stored_batch_reaches_on_stored_after_the_sink_has_it(rig: Rig, air_topics: list[str]) -> None:
    source, sink, seen, _, _ = rig
    keys = send_readings(source, air_topics, 0)
    wait_for(lambda: len(seen.keys()) == len(keys), "on_stored")
    assert sorted(seen.keys()) == sorted(keys)
    assert sorted(sink.stored_devices()) == sorted(keys)
    assert seen.sink_had == [len(keys)], "on_stored ran before the sink had the batch"


def test_spooled_batch_reaches_on_stored_only_when_its_replay_is_stored(rig: Rig, air_topics: list[str]) -> None:
    source, sink, seen, collector, store = rig
    sink.state = "down"
    keys = send_readings(source, air_topics, 0)
    wait_for(source.all_acked, "the spooled batch acknowledged")
    assert collector.totals.spooled == len(keys) and store.stats()["spooled"] == len(keys)
    assert seen.keys() == [], "spooled readings must not reach the rules before they are stored"
    sink.state = "up"
    wait_for(lambda: len(seen.keys()) == len(keys), "on_stored after the replay")
    assert sorted(seen.keys()) == sorted(keys)
    assert seen.sink_had == [len(keys)], "on_stored ran before the replayed batch was stored"
    assert all(isinstance(i, Reading) and i.values["pm25"] >= 30.0 for i in seen.items)


def test_refused_batches_never_reach_on_stored(rig: Rig, air_topics: list[str]) -> None:
    source, sink, seen, collector, store = rig
    sink.state = "refuse"
    send_readings(source, air_topics, 0)
    wait_for(source.all_acked, "the refused batch dead-lettered and acknowledged")
    # Refused on replay too: spooled during an outage, then refused when the store answers again.
    sink.state = "down"
    send_readings(source, air_topics, 100)
    wait_for(source.all_acked, "the second batch spooled")
    sink.state = "refuse"
    wait_for(lambda: collector.writer is not None and collector.writer.pending == 0, "the refused replay dropped")
    wait_for(lambda: store.stats()["by_reason"].get(SINK_REJECTED) == 2 * len(air_topics), "dead letters")
    assert seen.items == []
    assert sink.batches == []


def test_embedded_store_readings_reach_on_stored(registry: Registry, tmp_path: Path, air_topics: list[str]) -> None:
    source, seen = MemorySource(), Seen(None)
    store = EmbeddedStore(tmp_path / "g.db")
    collector = Collector(source, registry, store, config=CollectorConfig(batch_wait_s=0.01, health_interval_s=60),
                          on_stored=seen)
    collector.start()
    try:
        keys = send_readings(source, air_topics, 0)
        source.send(air_topics[0], {"ts": NOW_MS, "pm25": "high"})  # rejected: never offered to the rules
        wait_for(source.all_acked, "the batch stored and acknowledged")
        wait_for(lambda: len(seen.keys()) >= len(keys), "on_stored")
    finally:
        collector.stop()
    assert sorted(seen.keys()) == sorted(keys)
    assert len(store.query_readings("air")) == len(keys)
    store.close()
