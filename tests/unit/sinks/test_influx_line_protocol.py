"""Line protocol encoding: the storage schema, escaping, and value types."""

from __future__ import annotations

import pytest

from gulou.sinks.influx import InfluxSink
from gulou.tsdb.line_protocol import encode_line, format_field, line_protocol
from gulou.tsdb.records import Batch, Point, StatusEvent
from gulou.tsdb.writer import SinkError, SinkRejected

TS = 1_790_000_000_123


def water_point(**values: float | int | bool) -> Point:
    return Point("WQ-001", "water", "water_station", "鼓东街道", "baima-01", TS, dict(values), 7,
                 {"river": "白马河"})


def test_reading_line_has_schema_tags_fields_and_ms_timestamp() -> None:
    [line] = line_protocol(Batch(points=[water_point(ph=7.2, do=6.5)]))
    assert line == ("water,device=WQ-001,river=白马河,site=baima-01,street=鼓东街道,type=water_station "
                    f"ph=7.2,do=6.5 {TS}")


def test_float_metric_sent_as_integer_json_is_written_as_float() -> None:
    [line] = line_protocol(Batch(points=[water_point(ph=7, turbidity=0)]))
    assert " ph=7.0,turbidity=0.0 " in line


def test_count_metrics_are_integers_and_lid_open_is_boolean() -> None:
    lot = Point("PK-01", "parking", "parking_lot", "南街街道", "lot-1", TS, {"total_spots": 120, "occupied_spots": 80},
                tags={"lot_type": "commercial"})
    sorting = Point("SP-01", "waste", "sorting_point", "南街街道", "cp-1", TS, {"inspected": 30, "correct": 28})
    binp = Point("BIN-1", "waste", "smart_bin", "南街街道", "cp-1", TS, {"fill_level": 0.5, "lid_open": True},
                 tags={"category": "厨余垃圾"})
    lines = line_protocol(Batch(points=[lot, sorting, binp]))
    assert lines[0].startswith("parking,device=PK-01,lot_type=commercial,")
    assert " total_spots=120i,occupied_spots=80i " in lines[0]
    assert " inspected=30i,correct=28i " in lines[1]
    assert ",category=厨余垃圾," in lines[2]
    assert " fill_level=0.5,lid_open=true " in lines[2]


def test_status_line() -> None:
    up = StatusEvent("WQ-001", "water", "鼓东街道", "baima-01", TS, True, battery=88, rssi=-71.5)
    down = StatusEvent("WQ-001", "water", "鼓东街道", "baima-01", TS + 1, False)
    series = "device_status,device=WQ-001,domain=water,site=baima-01,street=鼓东街道"
    assert line_protocol(Batch(statuses=[up, down])) == [
        f"{series} online=1i,battery=88.0,rssi=-71.5 {TS}",
        f"{series} online=0i {TS + 1}",
    ]


@pytest.mark.parametrize(("tag", "escaped"), [
    ("a b", r"a\ b"), ("a,b", r"a\,b"), ("a=b", r"a\=b"), ("鼓楼 区,=x", r"鼓楼\ 区\,\=x"), ('say "hi"', r'say\ "hi"'),
])
def test_tag_values_escape_space_comma_equals(tag: str, escaped: str) -> None:
    assert encode_line("m", {"t": tag}, {"v": 1.0}, 5) == f"m,t={escaped} v=1.0 5"


def test_measurement_and_keys_are_escaped() -> None:
    line = encode_line("my meas,x", {"tag key": "v", "k=1": "w"}, {"field,key": 2}, 9)
    assert line == r"my\ meas\,x,k\=1=w,tag\ key=v field\,key=2i 9"


def test_string_fields_escape_quotes_and_backslashes_and_keep_chinese() -> None:
    line = encode_line("alerts", {"rule_id": "pm25"}, {"message": 'PM2.5 超标 "1.5倍" C:\\x', "value": 1.5}, 1)
    assert line == r'alerts,rule_id=pm25 message="PM2.5 超标 \"1.5倍\" C:\\x",value=1.5 1'


def test_field_value_types() -> None:
    assert format_field(True) == "true"
    assert format_field(False) == "false"
    assert format_field(3) == "3i"
    assert format_field(-3) == "-3i"
    assert format_field(3.0) == "3.0"
    assert format_field(1e-5) == "1e-05"
    assert format_field(0.1 + 0.2) == "0.30000000000000004"  # full precision, no rounding
    with pytest.raises(ValueError):
        format_field(float("nan"))


def test_empty_tags_and_none_fields_are_left_out_but_a_field_is_required() -> None:
    assert encode_line("m", {"a": "", "b": None, "c": "x"}, {"f": None, "g": 1.5}, 3) == "m,c=x g=1.5 3"
    with pytest.raises(ValueError, match="no fields"):
        encode_line("m", {"a": "x"}, {"f": None}, 3)


def test_tags_are_sorted_by_key() -> None:
    assert encode_line("m", {"z": "1", "a": "2", "m": "3"}, {"v": 1.0}, 0) == "m,a=2,m=3,z=1 v=1.0 0"


def test_http_errors_translate_to_rejected_or_retryable() -> None:
    from influxdb_client.rest import ApiException

    sink = InfluxSink("http://127.0.0.1:9", "org", "bucket", "token")
    try:
        bad = sink._translate(ApiException(status=400, reason="Bad Request"))  # type: ignore[no-untyped-call]
        assert isinstance(bad, SinkRejected) and "HTTP 400" in str(bad)
        for status in (401, 404, 429, 500, 503):
            err = sink._translate(ApiException(status=status, reason="x"))  # type: ignore[no-untyped-call]
            assert isinstance(err, SinkError) and not isinstance(err, SinkRejected), status
        refused = sink._translate(ConnectionRefusedError("refused"))
        assert type(refused) is SinkError and "unreachable" in str(refused)
    finally:
        sink.close()
