"""What a rejection carries besides its reason: the device and domain it is booked under (accounting and dead
letters are kept per device), and a detail an operator can act on."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from gulou.devices.catalog import domains
from gulou.devices.contract import Decoder, Reading, Rejection, StatusUpdate, parse_topic
from tests.unit.devices.test_boundaries import DECODER, NOW

AIR = "gulou/air/dev-air_station/telemetry"
AIR_STATUS = "gulou/air/dev-air_station/status"


def rejected(topic: str, payload: bytes, decoder: Decoder = DECODER) -> Rejection:
    result = decoder.decode(topic, payload, NOW)
    assert isinstance(result, Rejection), result
    return result


def test_topic_rejections_name_what_they_can() -> None:
    bad = parse_topic("gulou/air/x")
    assert isinstance(bad, Rejection) and (bad.device_id, bad.domain) == (None, None)
    assert bad.detail == "'gulou/air/x': topic is not gulou/<domain>/<device_id>/telemetry|status"
    soil = parse_topic("gulou/soil/x1/telemetry")
    assert isinstance(soil, Rejection) and soil.reason == "unknown_domain"
    assert (soil.device_id, soil.domain) == ("x1", None)
    assert soil.detail == f"domain 'soil' is not one of {', '.join(domains())}"


def test_topics_parse_into_their_parts() -> None:
    for kind in ("telemetry", "status"):
        topic = parse_topic(f"gulou/water/wq-1/{kind}")
        assert not isinstance(topic, Rejection)
        assert (topic.domain, topic.device_id, topic.kind) == ("water", "wq-1", kind)


def test_registry_rejections_are_booked_under_the_topic() -> None:
    ghost = rejected("gulou/air/ghost/telemetry", b"{}")
    assert (ghost.reason, ghost.device_id, ghost.domain) == ("unknown_device", "ghost", "air")
    assert ghost.detail == "device 'ghost' is not registered"
    moved = rejected("gulou/water/dev-air_station/telemetry", b"{}")
    assert (moved.reason, moved.device_id, moved.domain) == ("domain_mismatch", "dev-air_station", "water")
    assert moved.detail == "device 'dev-air_station' is registered as air, topic says water"


NOW_MS = int(NOW.timestamp() * 1000)
# (telemetry payload, status payload, the reason each must get)
BAD_PAYLOADS: list[tuple[object, object, str]] = [
    ("not json", "not json", "malformed_json"),
    ([1, 2], [1, 2], "not_object"),
    ({"pm25": 1}, {"state": "online"}, "missing_ts"),
    ({"ts": NOW_MS, "pm25": 1, "colour": 1}, {"ts": NOW_MS, "state": "online", "colour": 1}, "unknown_field"),
    ({"ts": NOW_MS, "pm25": -1}, {"ts": NOW_MS, "state": "online", "battery": -1}, "out_of_range"),
    ({"ts": 1000, "pm25": 1}, {"ts": 1000, "state": "online"}, "bad_timestamp"),
    ({"ts": NOW_MS + 3_600_000, "pm25": 1}, {"ts": NOW_MS + 3_600_000, "state": "online"}, "future_timestamp"),
]


@pytest.mark.parametrize(("telemetry", "status", "reason"), BAD_PAYLOADS, ids=[r for *_, r in BAD_PAYLOADS])
def test_payload_rejections_are_booked_under_the_device(telemetry: object, status: object, reason: str) -> None:
    for topic, body in ((AIR, telemetry), (AIR_STATUS, status)):
        payload = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        result = rejected(topic, payload)
        assert (result.reason, result.device_id, result.domain) == (reason, "dev-air_station", "air"), topic


def test_the_first_reason_in_contract_order_wins() -> None:
    # Both an unknown field and an out-of-range value: the contract lists unknown_field first (alphabetically
    # it would come second), and the detail lists every problem.
    result = rejected(AIR, b'{"ts": 1764144000000, "pm25": -1, "colour": "x"}')
    assert result.reason == "unknown_field"
    first, second = result.detail.split("; ")
    assert first.startswith("colour: ") and first.endswith('(got "x")')
    assert second.startswith("pm25: ") and second.endswith("(got -1)")


def test_detail_shows_the_offending_value_briefly() -> None:
    chinese = rejected(AIR, '{"ts": 1, "pm25": "高"}'.encode())
    assert chinese.detail.startswith("pm25: ") and chinese.detail.endswith('(got "高")')
    assert rejected(AIR, b'{"ts": 1, "pm25": [1]}').detail.count("(got") == 0  # containers are not echoed
    fits = rejected(AIR, b'{"ts": 1, "pm25": "' + b"y" * 58 + b'"}')  # 60 characters with its quotes
    assert fits.detail.endswith('(got "' + "y" * 58 + '")')
    over = rejected(AIR, b'{"ts": 1, "pm25": "' + b"z" * 59 + b'"}')  # 61 characters: cut to 57 and "..."
    assert over.detail.endswith('(got "' + "z" * 56 + "...)")
    long = rejected(AIR, b'{"ts": 1, "pm25": "' + b"x" * 80 + b'"}')
    assert long.detail.endswith('(got "' + "x" * 56 + "...)")
    raw = rejected(AIR, b"\xff\xfe")
    assert raw.detail.startswith("payload: ") and raw.detail.endswith("(got b'\\xff\\xfe')")
    union = rejected(AIR, b'{"ts": "yesterday", "pm25": 1}')
    assert union.detail.startswith("ts.datetime: ") and "; ts.int: " in union.detail


def test_a_model_level_problem_is_named_payload() -> None:
    assert rejected(AIR, b'{"ts": 1764144000000}').detail == "payload: Value error, payload carries no metric"


def test_timestamp_details() -> None:
    assert rejected(AIR, b'{"ts": 100000000000000000000, "pm25": 1}').detail == \
        "ts 0001-01-01T00:00:00+00:00 is before 2000-01-01"
    assert rejected(AIR, b'{"ts": "2026-11-26T17:00:00+08:00", "pm25": 1}').detail == \
        "ts 2026-11-26T09:00:00+00:00 is 3600 s ahead of the receive time (allowed 300 s)"


def test_status_update_fields() -> None:
    body = {"ts": "2026-11-26T16:00:00+08:00", "state": "online", "battery": 80.5, "rssi": -70.0}
    update = DECODER.decode(AIR_STATUS, json.dumps(body).encode(), NOW)
    assert isinstance(update, StatusUpdate)
    assert update.device.id == "dev-air_station" and update.ts == NOW and update.online is True
    assert (update.battery, update.rssi) == (80.5, -70.0)
    offline = DECODER.decode(AIR_STATUS, b'{"ts": 1764144000000, "state": "offline"}', NOW)
    assert isinstance(offline, StatusUpdate) and offline.online is False and offline.rssi is None


def test_receive_time_defaults_to_the_clock() -> None:
    fresh = json.dumps({"ts": int(time.time() * 1000), "pm25": 1.0}).encode()
    assert isinstance(DECODER.decode(AIR, fresh), Reading)
    ahead = json.dumps({"ts": int(time.time() * 1000) + 3_600_000, "pm25": 1.0}).encode()
    assert rejected_now(ahead).reason == "future_timestamp"


def rejected_now(payload: bytes) -> Rejection:
    result = DECODER.decode(AIR, payload)
    assert isinstance(result, Rejection), result
    return result


@pytest.fixture
def beijing_machine() -> Iterator[None]:
    """The process's local time zone set to Beijing, as on a server configured for the district."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Shanghai"
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


@pytest.mark.usefixtures("beijing_machine")
def test_decoded_times_are_utc_whatever_the_machine_zone() -> None:
    result = DECODER.decode(AIR, b'{"ts": "2026-11-26T16:00:00+08:00", "pm25": 1}', NOW)
    assert isinstance(result, Reading)
    assert result.ts.isoformat() == "2026-11-26T08:00:00+00:00" and result.ts.tzinfo is UTC
    assert result.ts == datetime(2026, 11, 26, 8, tzinfo=UTC) and NOW - result.ts == timedelta(0)


# -- station fields (what the HJ 212 gateway adds) ------------------------------------------------------------

def test_plain_readings_are_real_time_mqtt_readings() -> None:
    result = DECODER.decode(AIR, json.dumps({"ts": NOW_MS, "seq": 4, "pm25": 12.5}).encode(), NOW)
    assert isinstance(result, Reading)
    assert (result.device.id, result.ts, result.seq, result.values) == ("dev-air_station", NOW, 4, {"pm25": 12.5})
    assert (result.period, result.flags, result.invalid, result.backfill, result.source) == \
        ("rtd", {}, {}, False, "mqtt")


def test_flagged_values_are_kept_apart() -> None:
    body = {"ts": NOW_MS, "seq": 9, "period": "hour", "backfill": True, "pm25": 30.0, "pm10": 55.0, "so2": 4.0,
            "flags": {"pm25": "N", "pm10": "D"}}
    result = DECODER.decode(AIR, json.dumps(body).encode(), NOW)
    assert isinstance(result, Reading)
    assert (result.device.id, result.ts, result.seq) == ("dev-air_station", NOW, 9)
    # pm10 flagged D (a fault) is not a measurement; pm25 flagged N is; so2, unflagged, counts as measured.
    assert result.values == {"pm25": 30.0, "so2": 4.0} and result.invalid == {"pm10": 55.0}
    assert result.flags == {"pm25": "N", "pm10": "D"}
    assert (result.period, result.backfill, result.source) == ("hour", True, "hj212")


@pytest.mark.parametrize("extra", [{"period": "minute"}, {"backfill": False}, {"flags": {"pm25": "N"}}])
def test_any_station_field_marks_a_station_reading(extra: dict[str, object]) -> None:
    result = DECODER.decode(AIR, json.dumps({"ts": NOW_MS, "pm25": 1.0, **extra}).encode(), NOW)
    assert isinstance(result, Reading) and result.source == "hj212" and result.values == {"pm25": 1.0}
    assert result.period == extra.get("period", "rtd") and result.backfill is False and result.invalid == {}


@pytest.mark.parametrize("flags", [[1], "N", 3])
def test_flags_of_the_wrong_json_type_are_a_wrong_type(flags: object) -> None:
    result = rejected(AIR, json.dumps({"ts": NOW_MS, "pm25": 1.0, "flags": flags}).encode())
    assert result.reason == "wrong_type" and result.detail.startswith("flags: ")
