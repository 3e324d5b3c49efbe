"""Every range the contract draws, at its edges, generated from the catalog and the payload models.

For each numeric metric of each catalog type: the minimum and maximum themselves and the nearest values inside
are accepted, the nearest values outside are ``out_of_range``. A new type or metric is covered by adding it to
the catalog. The same for the status payload's battery and RSSI, the sequence number, the earliest timestamp and
the allowed clock skew.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from annotated_types import Ge, Le

from gulou.devices.base import DeviceType, Metric, PayloadBase
from gulou.devices.catalog import CATALOG
from gulou.devices.contract import EARLIEST, Decoder, Reading, Rejection, StatusPayload, StatusUpdate, status_topic
from gulou.devices.registry import Registry, parse_registry

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
TS = "2026-11-26T16:00:00+08:00"


def _registry() -> Registry:
    """One device of every catalog type."""
    sites = [{"id": "site-1", "kind": "air_site", "name": "测试点", "street": "鼓东街道", "lat": 26.08, "lon": 119.3}]
    devices = [{"id": f"dev-{t.name}", "type": t.name, "site": "site-1", "name": t.name,
                **{f: "厨余垃圾" for f in t.device_fields}} for t in CATALOG.values()]
    return parse_registry({"sites": sites, "devices": devices}, "boundaries")


DECODER = Decoder(_registry())


def _edges(minimum: float, maximum: float, kind: str) -> tuple[list[float], list[float]]:
    """(accepted, rejected) values at a closed range's edges: the ends, the nearest inside, the nearest outside."""
    if kind == "int":
        lo, hi = int(minimum), int(maximum)
        return [lo, lo + 1, hi - 1, hi], [lo - 1, hi + 1]
    flo, fhi = float(minimum), float(maximum)
    inside = [flo, math.nextafter(flo, math.inf), math.nextafter(fhi, -math.inf), fhi]
    outside = [math.nextafter(flo, -math.inf), math.nextafter(fhi, math.inf)]
    return inside, outside


RANGED = [(t, m) for t in CATALOG.values() for m in t.metrics if m.kind != "bool"]


def _metric_id(case: tuple[DeviceType, Metric]) -> str:
    return f"{case[0].name}.{case[1].name}"


def _decode_metric(dtype: DeviceType, name: str, value: Any) -> Reading | StatusUpdate | Rejection:
    # json.dumps writes floats with repr, which round-trips: the decoder sees exactly this value.
    body = json.dumps({"ts": TS, name: value}).encode()
    return DECODER.decode(f"gulou/{dtype.domain}/dev-{dtype.name}/telemetry", body, now=NOW)


def test_every_numeric_metric_has_a_closed_range() -> None:
    for dtype, m in RANGED:
        assert m.minimum is not None and m.maximum is not None and m.minimum < m.maximum, _metric_id((dtype, m))


@pytest.mark.parametrize("case", RANGED, ids=_metric_id)
def test_metric_range_edges(case: tuple[DeviceType, Metric]) -> None:
    dtype, m = case
    assert m.minimum is not None and m.maximum is not None
    accepted, rejected = _edges(m.minimum, m.maximum, m.kind)
    for value in accepted:
        result = _decode_metric(dtype, m.name, value)
        assert isinstance(result, Reading), f"{m.name}={value!r} should be accepted: {result}"
        assert result.values == {m.name: value} and type(result.values[m.name]) is type(value)
    for value in rejected:
        result = _decode_metric(dtype, m.name, value)
        assert isinstance(result, Rejection) and result.reason == "out_of_range", f"{m.name}={value!r}: {result}"
        assert m.name in result.detail


def _bounds(model: type[PayloadBase] | type[StatusPayload], field: str) -> tuple[Any, Any]:
    """The ge/le a pydantic field declares, as declared."""
    meta = model.model_fields[field].metadata
    return next(c.ge for c in meta if isinstance(c, Ge)), next(c.le for c in meta if isinstance(c, Le))


@pytest.mark.parametrize("field", ["battery", "rssi"])
def test_status_range_edges(field: str) -> None:
    lo, hi = _bounds(StatusPayload, field)
    accepted, rejected = _edges(lo, hi, "float")
    dtype = next(iter(CATALOG.values()))
    topic = status_topic(dtype.domain, f"dev-{dtype.name}")
    for value in accepted:
        result = DECODER.decode(topic, json.dumps({"ts": TS, "state": "online", field: value}).encode(), NOW)
        assert isinstance(result, StatusUpdate) and getattr(result, field) == value, (field, value, result)
    for value in rejected:
        result = DECODER.decode(topic, json.dumps({"ts": TS, "state": "online", field: value}).encode(), NOW)
        assert isinstance(result, Rejection) and result.reason == "out_of_range", (field, value, result)


def test_sequence_number_edges() -> None:
    dtype = CATALOG["air_station"]
    model = dtype.payload_model
    lo, hi = _bounds(model, "seq")
    assert (lo, hi) == (0, 2**63 - 1)  # what SQLite INTEGER and line-protocol i64 hold
    topic = f"gulou/{dtype.domain}/dev-{dtype.name}/telemetry"
    for seq in (lo, lo + 1, hi - 1, hi):
        result = DECODER.decode(topic, json.dumps({"ts": TS, "seq": seq, "pm25": 1.0}).encode(), NOW)
        assert isinstance(result, Reading) and result.seq == seq
    for seq in (lo - 1, hi + 1):
        result = DECODER.decode(topic, json.dumps({"ts": TS, "seq": seq, "pm25": 1.0}).encode(), NOW)
        assert isinstance(result, Rejection) and result.reason == "out_of_range", seq


def _decode_at(ts: str | int, decoder: Decoder = DECODER, kind: str = "telemetry") -> object:
    dtype = CATALOG["air_station"]
    body = {"ts": ts, "pm25": 1.0} if kind == "telemetry" else {"ts": ts, "state": "offline"}
    return decoder.decode(f"gulou/{dtype.domain}/dev-{dtype.name}/{kind}", json.dumps(body).encode(), NOW)


@pytest.mark.parametrize("kind", ["telemetry", "status"])
def test_earliest_timestamp_edge(kind: str) -> None:
    at_ms = int(EARLIEST.timestamp() * 1000)
    first = _decode_at(at_ms, kind=kind)
    assert not isinstance(first, Rejection) and first.ts == EARLIEST  # type: ignore[attr-defined]
    assert not isinstance(_decode_at(EARLIEST.isoformat(), kind=kind), Rejection)
    for before in (at_ms - 1, (EARLIEST - timedelta(microseconds=1)).isoformat()):
        result = _decode_at(before, kind=kind)
        assert isinstance(result, Rejection) and result.reason == "bad_timestamp", before


@pytest.mark.parametrize("skew_s", [0, 1, 300])
@pytest.mark.parametrize("kind", ["telemetry", "status"])
def test_clock_skew_edge(skew_s: int, kind: str) -> None:
    decoder = Decoder(DECODER.registry, max_future=timedelta(seconds=skew_s))
    at = NOW + timedelta(seconds=skew_s)
    for ok in (at, at - timedelta(milliseconds=1)):
        assert not isinstance(_decode_at(int(ok.timestamp() * 1000), decoder, kind), Rejection), ok
    late = _decode_at(int((at + timedelta(milliseconds=1)).timestamp() * 1000), decoder, kind)
    assert isinstance(late, Rejection) and late.reason == "future_timestamp"
    assert f"allowed {skew_s} s" in late.detail


def test_default_clock_skew_is_five_minutes() -> None:
    assert Decoder(DECODER.registry).max_future == timedelta(minutes=5)


@pytest.mark.parametrize(("type_name", "whole", "part"), [("sorting_point", "inspected", "correct"),
                                                          ("parking_lot", "total_spots", "occupied_spots")])
def test_part_of_a_whole_edges(type_name: str, whole: str, part: str) -> None:
    """The cross-field rules: a part may equal its whole, never exceed it by one."""
    dtype = CATALOG[type_name]
    topic = f"gulou/{dtype.domain}/dev-{dtype.name}/telemetry"

    def decode(total: int, share: int) -> object:
        return DECODER.decode(topic, json.dumps({"ts": TS, whole: total, part: share}).encode(), NOW)

    for total, share in ((10, 10), (10, 9), (0, 0)):
        assert isinstance(decode(total, share), Reading), (total, share)
    result = decode(10, 11)
    assert isinstance(result, Rejection) and result.reason == "inconsistent"
