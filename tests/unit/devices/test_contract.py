"""Contract tests run for every device type in the catalog: a new type is covered automatically."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gulou.devices.base import DeviceType, Metric
from gulou.devices.catalog import CATALOG
from gulou.devices.contract import REASONS, Decoder, Reading, Rejection, StatusUpdate, parse_topic, telemetry_topic
from gulou.devices.registry import Registry, parse_registry

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
TYPES = sorted(CATALOG)


def _registry() -> Registry:
    sites = [{"id": "site-1", "kind": "air_site", "name": "测试点", "street": "鼓东街道", "lat": 26.08, "lon": 119.3}]
    devices = [
        {"id": f"dev-{name}", "type": name, "site": "site-1", "name": name,
         **({"category": "厨余垃圾"} if name == "smart_bin" else {})}
        for name in TYPES
    ]
    return parse_registry({"sites": sites, "devices": devices}, "test")


REG = _registry()
DECODER = Decoder(REG)


def _valid_value(m: Metric) -> Any:
    if m.kind == "bool":
        return True
    low = m.minimum if m.minimum is not None else 0
    high = m.maximum if m.maximum is not None else low + 10
    mid = (low + high) / 2
    return int(mid) if m.kind == "int" else round(mid, 3)


def _payload(dtype: DeviceType, **override: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"ts": "2026-11-26T16:00:00+08:00", "seq": 1}
    body.update({m.name: _valid_value(m) for m in dtype.metrics})
    if dtype.name == "sorting_point":
        body.update(inspected=100, correct=96)
    if dtype.name == "parking_lot":
        body.update(total_spots=300, occupied_spots=120)
    body.update(override)
    return body


def _decode(dtype: DeviceType, body: dict[str, Any] | bytes) -> Reading | StatusUpdate | Rejection:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return DECODER.decode(telemetry_topic(dtype.domain, f"dev-{dtype.name}"), raw, now=NOW)


def _reason(result: object) -> str:
    assert isinstance(result, Rejection), f"expected a rejection, got {result!r}"
    assert result.reason in REASONS
    return result.reason


@pytest.fixture(params=TYPES)
def dtype(request: pytest.FixtureRequest) -> DeviceType:
    return CATALOG[request.param]


def test_valid_payload_accepted_with_every_metric(dtype: DeviceType) -> None:
    result = _decode(dtype, _payload(dtype))
    assert isinstance(result, Reading), result
    assert set(result.values) == {m.name for m in dtype.metrics}
    assert result.ts == NOW
    assert result.seq == 1
    assert result.device.id == f"dev-{dtype.name}"


def test_epoch_milliseconds_accepted(dtype: DeviceType) -> None:
    result = _decode(dtype, _payload(dtype, ts=int(NOW.timestamp() * 1000)))
    assert isinstance(result, Reading) and result.ts == NOW


def test_subset_of_metrics_accepted(dtype: DeviceType) -> None:
    first = dtype.metrics[0]
    body = {"ts": "2026-11-26T16:00:00+08:00", first.name: _valid_value(first)}
    result = _decode(dtype, body)
    assert isinstance(result, Reading) and list(result.values) == [first.name]


def test_each_metric_out_of_range_rejected(dtype: DeviceType) -> None:
    for m in dtype.metrics:
        if m.kind == "bool":
            continue
        assert m.minimum is not None and m.maximum is not None, f"{dtype.name}.{m.name} needs a physical range"
        above = m.maximum + 1
        below = m.minimum - 1
        for value in (above, below):
            body = _payload(dtype, **{m.name: int(value) if m.kind == "int" else float(value)})
            assert _reason(_decode(dtype, body)) == "out_of_range", (m.name, value)


def test_each_metric_wrong_type_rejected(dtype: DeviceType) -> None:
    for m in dtype.metrics:
        for bad in ("12", [1], {"v": 1}):
            assert _reason(_decode(dtype, _payload(dtype, **{m.name: bad}))) == "wrong_type", (m.name, bad)
        if m.kind != "bool":
            assert _reason(_decode(dtype, _payload(dtype, **{m.name: True}))) == "wrong_type"
        if m.kind == "int":
            assert _reason(_decode(dtype, _payload(dtype, **{m.name: 2.5}))) == "wrong_type"


def test_non_finite_rejected(dtype: DeviceType) -> None:
    numeric = next(m for m in dtype.metrics if m.kind != "bool")
    for token in ("NaN", "Infinity", "-Infinity"):
        body = _payload(dtype)
        body[numeric.name] = "__TOKEN__"
        raw = json.dumps(body).replace('"__TOKEN__"', token)
        assert _reason(_decode(dtype, raw.encode())) == "non_finite"


def test_timestamp_problems_rejected(dtype: DeviceType) -> None:
    body = _payload(dtype)
    del body["ts"]
    assert _reason(_decode(dtype, body)) == "missing_ts"
    assert _reason(_decode(dtype, _payload(dtype, ts="2026-11-26T16:00:00"))) == "bad_timestamp"  # no offset
    assert _reason(_decode(dtype, _payload(dtype, ts="yesterday"))) == "bad_timestamp"
    assert _reason(_decode(dtype, _payload(dtype, ts=1.5))) == "bad_timestamp"
    assert _reason(_decode(dtype, _payload(dtype, ts=1000))) == "bad_timestamp"  # 1970
    future = (NOW + timedelta(hours=1)).isoformat()
    assert _reason(_decode(dtype, _payload(dtype, ts=future))) == "future_timestamp"
    slight = (NOW + timedelta(minutes=2)).isoformat()
    assert isinstance(_decode(dtype, _payload(dtype, ts=slight)), Reading)


def test_structure_problems_rejected(dtype: DeviceType) -> None:
    assert _reason(_decode(dtype, b"{not json")) == "malformed_json"
    assert _reason(_decode(dtype, b"\xff\xfe\x00")) == "malformed_json"
    assert _reason(_decode(dtype, b"")) == "malformed_json"
    assert _reason(_decode(dtype, b"[1, 2]")) == "not_object"
    assert _reason(_decode(dtype, b'"text"')) == "not_object"
    assert _reason(_decode(dtype, _payload(dtype, firmware="1.2"))) == "unknown_field"
    assert _reason(_decode(dtype, {"ts": "2026-11-26T16:00:00+08:00"})) == "no_metrics"
    assert _reason(_decode(dtype, _payload(dtype, seq=-1))) == "out_of_range"
    assert _reason(_decode(dtype, _payload(dtype, seq="7"))) == "wrong_type"


def test_status_payloads(dtype: DeviceType) -> None:
    topic = f"gulou/{dtype.domain}/dev-{dtype.name}/status"
    ok = DECODER.decode(topic, b'{"ts": "2026-11-26T16:00:00+08:00", "state": "offline", "battery": 12.5}', NOW)
    assert isinstance(ok, StatusUpdate) and ok.online is False and ok.battery == 12.5
    assert _reason(DECODER.decode(topic, b'{"ts": 1764144000000, "state": "asleep"}', NOW)) == "wrong_type"
    assert _reason(DECODER.decode(topic, b'{"ts": 1764144000000, "state": "online", "rssi": 10}', NOW)) \
        == "out_of_range"


def test_topic_and_registry_problems() -> None:
    assert _reason(parse_topic("gulou/air/x")) == "bad_topic"
    assert _reason(parse_topic("other/air/x/telemetry")) == "bad_topic"
    assert _reason(parse_topic("gulou/air//telemetry")) == "bad_topic"
    assert _reason(parse_topic("gulou/soil/x/telemetry")) == "unknown_domain"
    assert _reason(DECODER.decode("gulou/air/ghost/telemetry", b"{}", NOW)) == "unknown_device"
    assert _reason(DECODER.decode("gulou/water/dev-air_station/telemetry", b"{}", NOW)) == "domain_mismatch"


def test_cross_field_rules() -> None:
    sorting, parking = CATALOG["sorting_point"], CATALOG["parking_lot"]
    assert _reason(_decode(sorting, _payload(sorting, inspected=10, correct=11))) == "inconsistent"
    assert _reason(_decode(parking, _payload(parking, total_spots=10, occupied_spots=11))) == "inconsistent"


def test_rejection_detail_names_field_and_value() -> None:
    air = CATALOG["air_station"]
    result = _decode(air, _payload(air, pm25=5000.0))
    assert isinstance(result, Rejection)
    assert "pm25" in result.detail and "5000" in result.detail


def test_every_metric_documents_unit_and_description(dtype: DeviceType) -> None:
    for m in dtype.metrics:
        assert m.unit and m.description
    assert dtype.default_interval_s > 0
    # The domain is a topic level and a measurement name: one lowercase word.
    assert re.fullmatch(r"[a-z][a-z0-9_]*", dtype.domain)


def test_every_reason_is_described_once() -> None:
    from typing import get_args

    from gulou.devices.contract import Reason

    assert list(REASONS) == list(get_args(Reason))
