"""HJ 212 station records on the bus: period, flags and sources survive, and a period mean keeps its own id."""

from __future__ import annotations

import json

from gulou.bus.bridge import BusBridge
from gulou.bus.codec import decode, envelope
from gulou.devices.registry import Registry
from gulou.tsdb.records import DeadLetter, Point

TS = 1_790_002_800_000


def _point(**station: object) -> Point:
    return Point("aq-001", "air", "air_station", "温泉街道", "air-wq-01", TS, {"pm25": 41.5}, None, {},
                 **station)  # type: ignore[arg-type]


def test_station_fields_round_trip_and_periods_have_their_own_ids() -> None:
    hourly = _point(period="hour", flags={"pm25": "N", "so2": "C"}, invalid={"so2": 9.0}, backfill=True,
                    source="hj212")
    real_time = _point(source="hj212", flags={"pm25": "N"})
    assert decode(envelope(hourly, 3)) == hourly and decode(envelope(real_time, 3)) == real_time
    assert envelope(hourly, 3).msg_id != envelope(real_time, 3).msg_id


def test_plain_readings_keep_their_body_and_id() -> None:
    plain = _point()
    message = envelope(plain, 0)
    assert set(json.loads(message.body)) == {"device_id", "domain", "type", "street", "site", "ts_ms", "values",
                                             "seq", "tags"}
    assert message.msg_id == f"r:aq-001:{TS}" and decode(message) == plain


def test_station_dead_letters_keep_source_and_mn() -> None:
    letter = DeadLetter("gulou/deadletters/hj212", b"##0000\xb2\xe2", "bad_crc", "CRC mismatch", TS, "aq-001", "air",
                        source="hj212", mn="350102A00000000000000001")
    assert decode(envelope(letter, None)) == letter


def test_the_bridge_files_the_gateways_dead_letters_byte_exact_and_counts_by_source(registry: Registry) -> None:
    from datetime import UTC, datetime

    from gulou.bus.memory import InProcessBus
    from gulou.bus.sink import account
    from gulou.devices.contract import STATION_DEADLETTERS
    from gulou.hj212.downstream import DeadLetter as GatewayLetter
    from gulou.sources.base import Delivery
    from gulou.tsdb.records import Batch
    from tests.unit.ingest.test_collector_on_stored import MemorySource

    raw = "##0080QN=1;ST=22;CN=2011;PW=x;MN=350102A00000000000000001;CP=&&清洗&&0000\r\n".encode("gbk")
    gateway = GatewayLetter(raw, "bad_crc", "CRC mismatch", "350102A00000000000000001", None, datetime.now(UTC))
    bridge = BusBridge(MemorySource(), registry, InProcessBus())
    [message] = bridge.envelopes([Delivery(STATION_DEADLETTERS, json.dumps(gateway.envelope()).encode(), 0.0)],
                                 datetime.now(UTC))
    letter = decode(message)
    assert isinstance(letter, DeadLetter)
    assert (letter.payload, letter.reason, letter.source, letter.mn, letter.device_id) == (
        raw, "bad_crc", "hj212", "350102A00000000000000001", "aq-001")
    rows = account(Batch(points=[_point(source="hj212", period="hour")]), [letter])
    assert {(r.outcome, r.source) for r in rows} == {("received", "hj212"), ("stored", "hj212"),
                                                     ("rejected", "hj212")}
