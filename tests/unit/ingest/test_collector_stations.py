"""The collector with HJ 212 traffic: the gateway's readings (period, flags) and its dead letters, by source."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gulou.devices.contract import STATION_DEADLETTERS
from gulou.devices.registry import Registry
from gulou.hj212.downstream import DeadLetter as GatewayLetter
from gulou.ingest.collector import Collector, CollectorConfig
from gulou.sinks.embedded import EmbeddedStore
from tests.unit.ingest.test_collector_on_stored import MemorySource
from tests.waiting import wait_for

HOUR = (datetime.now(UTC) - timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
# A packet as a station sent it: GBK text in the data area, so not UTF-8 (the store must keep the bytes).
RAW = ("##0120QN=1;ST=22;CN=2011;PW=123456;MN=350102A00000000000000001;Flag=5;CP=&&i11001-Info=清洗管路&&0000\r\n"
       ).encode("gbk")


@pytest.fixture
def running(tmp_path: Path, registry: Registry) -> Iterator[tuple[MemorySource, EmbeddedStore]]:
    source = MemorySource()
    store = EmbeddedStore(tmp_path / "g.db")
    collector = Collector(source, registry, store, config=CollectorConfig(batch_wait_s=0.01))
    collector.start()
    try:
        yield source, store
    finally:
        collector.stop()
        store.close()


def test_gateway_readings_and_dead_letters_are_stored_and_counted_by_source(
        running: tuple[MemorySource, EmbeddedStore], registry: Registry) -> None:
    source, store = running
    letter = GatewayLetter(RAW, "bad_crc", "CRC mismatch: received 0000", "350102A00000000000000001", "10.1.2.3:4051",
                           datetime.now(UTC))
    source.send(STATION_DEADLETTERS, letter.envelope())
    source.send(STATION_DEADLETTERS, {"source": "hj212", "reason": "bad_crc"})  # not an envelope the gateway writes
    unknown = GatewayLetter(b"##0010garbage", "unknown_mn", "MN NOBODY is not configured", "NOBODY", None,
                            datetime.now(UTC))
    source.send(STATION_DEADLETTERS, unknown.envelope())
    source.send("gulou/air/aq-001/telemetry", {"ts": HOUR.isoformat(), "period": "hour", "pm25": 41.5, "so2": 9.0,
                                               "flags": {"pm25": "N", "so2": "C"}})
    source.send("gulou/air/aq-001/telemetry", {"ts": HOUR.isoformat(), "period": "rtd", "pm25": 38.0,
                                               "flags": {"pm25": "N"}})
    source.send("gulou/air/aq-003/telemetry", {"ts": HOUR.isoformat(), "pm25": 20.0})
    wait_for(source.all_acked, 10, "every delivery acknowledged")
    stats = wait_for(lambda: (s := store.stats())["received"] == 6 and s, 10, "six messages accounted")
    assert stats["by_source"] == {"hj212": {"received": 5, "stored": 2, "rejected": 3},
                                  "mqtt": {"received": 1, "stored": 1, "rejected": 0}}
    assert stats["by_reason"] == {"bad_crc": 1, "bad_envelope": 1, "unknown_mn": 1}
    letters = {d["reason"]: d for d in store.deadletters(source="hj212")}
    crc = letters["bad_crc"]
    assert base64.b64decode(crc["payload_b64"]) == RAW  # byte-exact, GBK and all
    assert (crc["mn"], crc["device_id"], crc["domain"]) == ("350102A00000000000000001", "aq-001", "air")
    assert crc["detail"] == "CRC mismatch: received 0000 (from 10.1.2.3:4051)"
    assert crc["topic"] == STATION_DEADLETTERS
    assert (letters["unknown_mn"]["mn"], letters["unknown_mn"]["device_id"]) == ("NOBODY", None)
    assert "envelope unreadable" in letters["bad_envelope"]["detail"]
    [hourly] = store.query_readings("air", "aq-001", period="hour")
    assert hourly["pm25"] == 41.5 and hourly["so2_invalid"] == 9.0 and hourly["so2_flag"] == "C"
    assert "so2" not in hourly
    [real_time] = store.query_readings("air", "aq-001")
    assert real_time["pm25"] == 38.0


def test_a_letter_is_counted_in_the_hour_the_gateway_received_the_packet(
        running: tuple[MemorySource, EmbeddedStore]) -> None:
    source, store = running
    received = datetime.now(UTC) - timedelta(hours=3)
    letter = GatewayLetter(b"##x", "truncated", "link closed mid-packet", None, "10.1.2.3:1", received)
    source.send(STATION_DEADLETTERS, letter.envelope())
    wait_for(source.all_acked, 10, "the letter acknowledged")
    [row] = store.deadletters()
    assert row["received_at"] == received.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    hour_ms = int(received.timestamp() * 1000) // 3_600_000 * 3_600_000
    rows = store._query("SELECT hour_ms, source, outcome FROM counts ORDER BY outcome")
    assert rows == [(hour_ms, "hj212", "received"), (hour_ms, "hj212", "rejected")]
