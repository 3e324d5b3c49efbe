"""The books, row by row: what the collector counts for each message (received, stored, spooled, replayed,
rejected with its reason), in which hour and under which device, and the dead letters it keeps."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from gulou.devices.contract import SINK_REJECTED
from gulou.devices.registry import Device, Registry
from gulou.ingest.collector import HOUR_MS, Collector
from gulou.ingest.spool import DurableWriter, Spool
from gulou.sinks.embedded import CountRow, EmbeddedStore
from gulou.sources.base import Delivery
from gulou.tsdb.records import Batch, DeadLetter, Point
from tests.unit.ingest.test_collector_on_stored import MemorySource, SwitchableSink

# Observation times in one hour, receive time in a later one: the two clocks the books use.
OBSERVED_MS = (int(time.time() * 1000) // HOUR_MS - 5) * HOUR_MS + 17 * 60_000  # 17 min into an hour, 5 h ago
RECEIVED_S = (OBSERVED_MS + 2 * HOUR_MS + 5 * 60_000) / 1000  # two hours later
OBS_HOUR = OBSERVED_MS - OBSERVED_MS % HOUR_MS
RECV_HOUR = int(RECEIVED_S * 1000) - int(RECEIVED_S * 1000) % HOUR_MS


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    s = EmbeddedStore(tmp_path / "g.db")
    yield s
    s.close()


def air(registry: Registry) -> Device:
    device = registry.get("aq-001")
    assert device is not None
    return device


def delivery(topic: str, body: dict[str, Any] | bytes, token: int) -> Delivery:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Delivery(topic, raw, RECEIVED_S, token=token)


def counts(store: EmbeddedStore) -> dict[tuple[int, str, str, str, str], int]:
    """The counts table as {(hour, device, domain, outcome, reason): n}."""
    rows = store._query("SELECT hour_ms, device_id, domain, outcome, reason, n FROM counts")
    return {(h, d, dom, o, r): n for h, d, dom, o, r, n in rows}


def letters(store: EmbeddedStore) -> list[tuple[Any, ...]]:
    return store._query("SELECT received_ms, topic, payload, reason, device_id, domain FROM deadletters ORDER BY id")


def mixed_batch(registry: Registry) -> list[Delivery]:
    """A reading and a status of aq-001, a message from an unknown device, and a malformed one from aq-001."""
    a = air(registry)
    return [
        delivery(f"gulou/air/{a.id}/telemetry", {"ts": OBSERVED_MS, "pm25": 12.0}, 1),
        delivery(f"gulou/air/{a.id}/status", {"ts": OBSERVED_MS + HOUR_MS, "state": "online"}, 2),
        delivery("gulou/air/ghost/telemetry", {"ts": OBSERVED_MS, "pm25": 1.0}, 3),
        delivery(f"gulou/air/{a.id}/telemetry", b"{broken", 4),
    ]


def test_embedded_store_books(registry: Registry, store: EmbeddedStore) -> None:
    source = MemorySource()
    collector = Collector(source, registry, store)
    assert collector._process(mixed_batch(registry))
    a = air(registry).id
    assert counts(store) == {
        # Valid messages count in the hour they were observed (completeness is about observation hours) ...
        (OBS_HOUR, a, "air", "received", ""): 1, (OBS_HOUR, a, "air", "stored", ""): 1,
        (OBS_HOUR + HOUR_MS, a, "air", "received", ""): 1, (OBS_HOUR + HOUR_MS, a, "air", "stored", ""): 1,
        # ... rejected ones in the hour they arrived, under whatever device and domain the topic named.
        (RECV_HOUR, "ghost", "air", "received", ""): 1, (RECV_HOUR, "ghost", "air", "rejected", "unknown_device"): 1,
        (RECV_HOUR, a, "air", "received", ""): 1, (RECV_HOUR, a, "air", "rejected", "malformed_json"): 1,
    }
    recv_ms = int(RECEIVED_S * 1000)
    assert letters(store) == [
        (recv_ms, "gulou/air/ghost/telemetry", json.dumps({"ts": OBSERVED_MS, "pm25": 1.0}).encode(),
         "unknown_device", "ghost", "air"),
        (recv_ms, f"gulou/air/{a}/telemetry", b"{broken", "malformed_json", a, "air"),
    ]
    t = collector.totals
    assert (t.received, t.stored, t.spooled, t.rejected, t.batches) == (4, 2, 0, 2, 1)
    assert t.by_domain == {"air": 2} and t.by_reason == {"unknown_device": 1, "malformed_json": 1}
    assert source.acked == [1, 2, 3, 4]
    stats = store.stats()
    assert (stats["received"], stats["stored"], stats["rejected"], stats["spooled"]) == (4, 2, 2, 0)
    assert store.query_readings()[0]["pm25"] == 12.0 and len(store.status_history()) == 1


def test_books_add_up_across_batches(registry: Registry, store: EmbeddedStore) -> None:
    collector = Collector(MemorySource(), registry, store)
    a = air(registry)
    topic = f"gulou/air/{a.id}/telemetry"
    for token in range(3):  # one per batch, two in the last: increments of 1, 1 and 2 on the same row
        batch = [delivery(topic, {"ts": OBSERVED_MS + token * 1000 + k, "pm25": 5.0}, token) for k in
                 range(1 + (token == 2))]
        collector._process(batch)
    assert counts(store)[(OBS_HOUR, a.id, "air", "stored", "")] == 4
    assert collector.totals.batches == 3 and collector.totals.stored == 4


def test_spooled_then_replayed_books(registry: Registry, store: EmbeddedStore, tmp_path: Path) -> None:
    sink = SwitchableSink()
    sink.state = "down"
    writer = DurableWriter(sink, Spool(tmp_path / "spool", 1 << 20), retry_initial_s=0)
    collector = Collector(MemorySource(), registry, store, writer=writer)
    stored: list[int] = []
    collector.on_stored = lambda items: stored.append(len(items))
    a = air(registry).id
    assert collector._process(mixed_batch(registry))
    assert counts(store) == {
        (OBS_HOUR, a, "air", "received", ""): 1, (OBS_HOUR, a, "air", "spooled", ""): 1,
        (OBS_HOUR + HOUR_MS, a, "air", "received", ""): 1, (OBS_HOUR + HOUR_MS, a, "air", "spooled", ""): 1,
        (RECV_HOUR, "ghost", "air", "received", ""): 1, (RECV_HOUR, "ghost", "air", "rejected", "unknown_device"): 1,
        (RECV_HOUR, a, "air", "received", ""): 1, (RECV_HOUR, a, "air", "rejected", "malformed_json"): 1,
    }
    assert (collector.totals.spooled, collector.totals.stored) == (2, 0) and stored == []
    assert store.stats()["spooled"] == 2
    sink.state = "up"
    assert writer.replay() == 1
    books = counts(store)
    for hour in (OBS_HOUR, OBS_HOUR + HOUR_MS):
        assert books[(hour, a, "air", "stored", "")] == books[(hour, a, "air", "replayed", "")] == 1
    assert store.stats()["spooled"] == 0 and store.stats()["stored"] == 2
    assert collector.totals.stored == 2 and stored == [2]


def test_refused_batch_books(registry: Registry, store: EmbeddedStore, tmp_path: Path) -> None:
    sink = SwitchableSink()
    sink.state = "refuse"
    collector = Collector(MemorySource(), registry, store, writer=DurableWriter(sink, Spool(tmp_path / "s", 1 << 20)))
    collector.on_stored = lambda items: pytest.fail("refused readings are never stored")
    a = air(registry).id
    assert collector._process(mixed_batch(registry))
    books = counts(store)
    assert books[(RECV_HOUR, a, "air", "rejected", SINK_REJECTED)] == 2  # the reading and the status
    assert books[(OBS_HOUR, a, "air", "received", "")] == 1
    assert not [k for k in books if k[3] in ("stored", "spooled")]
    refused = [row for row in letters(store) if row[3] == SINK_REJECTED]
    assert [(r[1], r[4], r[5]) for r in refused] == [(f"gulou/air/{a}/telemetry", a, "air"),
                                                     (f"gulou/air/{a}/status", a, "air")]
    assert all(r[0] == int(RECEIVED_S * 1000) for r in refused)
    t = collector.totals
    assert (t.received, t.stored, t.spooled, t.rejected) == (4, 0, 0, 4)
    assert t.by_reason == {"unknown_device": 1, "malformed_json": 1, SINK_REJECTED: 2}


def test_refused_on_replay_books(registry: Registry, store: EmbeddedStore, tmp_path: Path) -> None:
    sink = SwitchableSink()
    sink.state = "down"
    writer = DurableWriter(sink, Spool(tmp_path / "spool", 1 << 20), retry_initial_s=0)
    collector = Collector(MemorySource(), registry, store, writer=writer)
    a = air(registry).id
    collector._process(mixed_batch(registry)[:2])
    sink.state = "refuse"
    before = int(time.time() * 1000)
    assert writer.replay() == 1
    after = int(time.time() * 1000)
    books = counts(store)
    now_hours = {after - after % HOUR_MS, before - before % HOUR_MS}
    refused = {k: n for k, n in books.items() if k[3] == "rejected"}
    assert sum(refused.values()) == 2 and {k[0] for k in refused} <= now_hours
    assert {k[1:] for k in refused} == {(a, "air", "rejected", SINK_REJECTED)}
    assert books[(OBS_HOUR, a, "air", "replayed", "")] == books[(OBS_HOUR + HOUR_MS, a, "air", "replayed", "")] == 1
    assert store.stats()["spooled"] == 0 and store.stats()["stored"] == 0
    rows = letters(store)
    assert [(r[1], r[3], r[4], r[5]) for r in rows] == [(f"gulou/air/{a}/telemetry", SINK_REJECTED, a, "air"),
                                                        (f"gulou/air/{a}/status", SINK_REJECTED, a, "air")]
    assert rows[0][2].startswith(b"air,") and b"pm25=12" in rows[0][2]
    assert rows[1][2].startswith(b"device_status,")
    assert all(before <= r[0] <= after for r in rows)


def test_replay_of_a_device_since_removed(registry: Registry, store: EmbeddedStore, tmp_path: Path) -> None:
    """A replayed reading of a device no longer registered is counted stored, but not handed on."""
    sink = SwitchableSink()
    writer = DurableWriter(sink, Spool(tmp_path / "spool", 1 << 20), retry_initial_s=0)
    collector = Collector(MemorySource(), registry, store, writer=writer)
    handed: list[int] = []
    collector.on_stored = lambda items: handed.append(len(items))
    gone = Point("gone-1", "air", "air_station", "鼓东街道", "s", OBSERVED_MS, {"pm25": 1.0})
    kept = Point.from_reading(collector.decoder.decode(f"gulou/air/{air(registry).id}/telemetry",
                                                       json.dumps({"ts": OBSERVED_MS, "pm25": 2.0}).encode()))  # type: ignore[arg-type]
    collector._replayed(Batch(points=[gone, kept]))
    assert handed == [1] and collector.totals.stored == 2
    books = counts(store)
    assert books[(OBS_HOUR, "gone-1", "air", "stored", "")] == books[(OBS_HOUR, "gone-1", "air", "replayed", "")] == 1


def test_the_store_writes_each_increment_once(store: EmbeddedStore) -> None:
    store.add_counts([CountRow(OBS_HOUR, "d", "air", "received"), CountRow(OBS_HOUR, "d", "air", "received", n=2),
                      CountRow(OBS_HOUR, "d", "air", "rejected", "bad_topic", n=0)])
    assert counts(store) == {(OBS_HOUR, "d", "air", "received", ""): 3}
    store.add_deadletters([DeadLetter("t", b"\xff", "bad_topic", "why", 5, None, None)],
                          [CountRow(RECV_HOUR, "", "", "rejected", "bad_topic")])
    assert letters(store) == [(5, "t", b"\xff", "bad_topic", None, None)]
    assert counts(store)[(RECV_HOUR, "", "", "rejected", "bad_topic")] == 1



def sourced(store: EmbeddedStore) -> dict[tuple[str, str, str, str], int]:
    """The counts table summed as {(device, outcome, reason, source): n}."""
    rows = store._query("SELECT device_id, outcome, reason, source, SUM(n) FROM counts"
                        " GROUP BY device_id, outcome, reason, source")
    return {(d, o, r, s): n for d, o, r, s, n in rows}


def test_mqtt_messages_are_booked_under_their_source(registry: Registry, store: EmbeddedStore) -> None:
    collector = Collector(MemorySource(), registry, store)
    collector._process(mixed_batch(registry))
    a = air(registry).id
    assert sourced(store) == {
        (a, "received", "", "mqtt"): 3, (a, "stored", "", "mqtt"): 2, (a, "rejected", "malformed_json", "mqtt"): 1,
        ("ghost", "received", "", "mqtt"): 1, ("ghost", "rejected", "unknown_device", "mqtt"): 1,
    }


def test_an_oversized_payload_keeps_its_first_bytes(registry: Registry, store: EmbeddedStore) -> None:
    from gulou.ingest.collector import CollectorConfig

    collector = Collector(MemorySource(), registry, store, config=CollectorConfig(max_payload_bytes=100,
                                                                                   keep_bytes=10))
    a = air(registry).id
    big = json.dumps({"ts": OBSERVED_MS, "pm25": 1.0, "pad": "x" * 200}).encode()
    fits = json.dumps({"ts": OBSERVED_MS, "pm25": 1.0}).encode()
    assert collector._process([delivery(f"gulou/air/{a}/telemetry", big, 1),
                               delivery(f"gulou/air/{a}/telemetry", fits, 2)])
    [letter] = letters(store)
    assert letter[1:] == (f"gulou/air/{a}/telemetry", big[:10], "payload_too_large", a, "air")
    assert sourced(store)[(a, "rejected", "payload_too_large", "mqtt")] == 1
    assert sourced(store)[(a, "stored", "", "mqtt")] == 1 and collector.totals.rejected == 1


def test_station_dead_letters_are_booked_under_the_station(registry: Registry, store: EmbeddedStore) -> None:
    import base64

    from gulou.devices.contract import STATION_DEADLETTERS

    station = registry.station("350102B00000000000000001")
    assert station is not None
    raw = b"##0101QN=20260501102030000;ST=21;CN=2011;PW=123456;MN=350102B00000000000000001;Flag=5;CP=&&&&1C80\r\n"
    received = "2026-05-01T10:20:31+08:00"
    envelope = {"source": "hj212", "received": received, "peer": "10.0.0.7:5000", "mn": "350102B00000000000000001",
                "reason": "bad_crc", "detail": "CRC 1C80 does not match", "raw_b64": base64.b64encode(raw).decode()}
    unreadable = b'{"source": "hj212"}'
    collector = Collector(MemorySource(), registry, store)
    assert collector._process([delivery(STATION_DEADLETTERS, envelope, 1),
                               delivery(STATION_DEADLETTERS, unreadable, 2)])
    received_ms = int(datetime.fromisoformat(received).timestamp() * 1000)
    rows = letters(store)
    assert rows[0] == (received_ms, STATION_DEADLETTERS, raw, "bad_crc", station.id, station.domain)
    assert rows[1][1:] == (STATION_DEADLETTERS, unreadable, "bad_envelope", None, None)
    books = sourced(store)
    assert books[(station.id, "received", "", "hj212")] == books[(station.id, "rejected", "bad_crc", "hj212")] == 1
    assert books[("", "rejected", "bad_envelope", "hj212")] == 1
    hour = received_ms - received_ms % HOUR_MS
    assert counts(store)[(hour, station.id, station.domain, "rejected", "bad_crc")] == 1
    assert collector.totals.rejected == 2 and collector.totals.by_reason == {"bad_crc": 1, "bad_envelope": 1}


def test_a_full_spool_books_nothing_and_acks_nothing(registry: Registry, store: EmbeddedStore,
                                                     tmp_path: Path) -> None:
    sink = SwitchableSink()
    sink.state = "down"
    source = MemorySource()
    writer = DurableWriter(sink, Spool(tmp_path / "spool", 1), retry_initial_s=0)
    collector = Collector(source, registry, store, writer=writer)
    assert collector._process(mixed_batch(registry)) is False
    assert counts(store) == {} and letters(store) == [] and source.acked == []
    assert collector.spool_full is not None and collector.totals.received == 0
    sink.state = "up"
    assert collector._process(mixed_batch(registry)) is True
    assert collector.spool_full is None and source.acked == [1, 2, 3, 4]


def test_counters_add_up_within_and_across_batches(registry: Registry, store: EmbeddedStore) -> None:
    collector = Collector(MemorySource(), registry, store)
    a = air(registry)
    topic, status = f"gulou/air/{a.id}/telemetry", f"gulou/air/{a.id}/status"
    for n in range(2):
        collector._process([delivery(topic, {"ts": OBSERVED_MS + n * 10 + k, "pm25": 5.0}, k) for k in range(2)]
                           + [delivery(status, {"ts": OBSERVED_MS + n * 10 + k, "state": "online"}, 9 + k)
                              for k in range(2)] + [delivery(topic, b"{", 20), delivery(topic, b"{", 21)])
    books = counts(store)
    assert books[(OBS_HOUR, a.id, "air", "received", "")] == 8
    assert books[(OBS_HOUR, a.id, "air", "stored", "")] == 8
    assert books[(RECV_HOUR, a.id, "air", "rejected", "malformed_json")] == 4
    t = collector.totals
    assert (t.received, t.stored, t.rejected, t.batches) == (12, 8, 4, 2)


def test_station_readings_are_booked_under_their_source(registry: Registry, store: EmbeddedStore,
                                                        tmp_path: Path) -> None:
    a = air(registry).id
    station = {"ts": OBSERVED_MS, "period": "hour", "pm25": 30.0}
    collector = Collector(MemorySource(), registry, store)
    collector._process([delivery(f"gulou/air/{a}/telemetry", station, 1)])
    assert sourced(store) == {(a, "received", "", "hj212"): 1, (a, "stored", "", "hj212"): 1}
    sink = SwitchableSink()
    sink.state = "refuse"
    refused_store = EmbeddedStore(tmp_path / "refused.db")
    refusing = Collector(MemorySource(), registry, refused_store, writer=DurableWriter(sink, Spool(tmp_path / "s",
                                                                                                      1 << 20)))
    refusing._process([delivery(f"gulou/air/{a}/telemetry", station, 1)])
    assert sourced(refused_store) == {(a, "received", "", "hj212"): 1, (a, "rejected", SINK_REJECTED, "hj212"): 1}
    [row] = refused_store._query("SELECT detail, source FROM deadletters")
    assert row == ("HTTP 400: field type conflict", "hj212")
    refused_store.close()


def test_spool_refusals_are_counted(registry: Registry, store: EmbeddedStore, tmp_path: Path) -> None:
    sink = SwitchableSink()
    sink.state = "down"
    collector = Collector(MemorySource(), registry, store, writer=DurableWriter(sink, Spool(tmp_path / "s", 1),
                                                                                retry_initial_s=0))
    for _ in range(3):
        assert collector._process(mixed_batch(registry)) is False
    assert collector.spool_refusals == 3
