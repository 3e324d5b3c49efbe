"""The decoder's fast path gives exactly what the pydantic model gives, and only takes what that model accepts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from unittest import mock

from hypothesis import event, given, settings
from hypothesis import strategies as st

from gulou.devices import contract
from gulou.devices.base import DeviceType, Metric
from gulou.devices.catalog import CATALOG
from gulou.devices.contract import Decoder, Reading, Rejection, StatusUpdate, telemetry_topic
from gulou.devices.fastpath import fast_payload
from gulou.devices.registry import Registry, parse_registry

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
TYPES = sorted(CATALOG)


def _registry() -> Registry:
    sites = [{"id": "site-1", "kind": "air_site", "name": "测试点", "street": "鼓东街道", "lat": 26.08, "lon": 119.3}]
    devices = [{"id": f"dev-{name}", "type": name, "site": "site-1", "name": name,
                **({"category": "厨余垃圾"} if name == "smart_bin" else {})} for name in TYPES]
    return parse_registry({"sites": sites, "devices": devices}, "test")


DECODER = Decoder(_registry())
Result = Reading | StatusUpdate | Rejection


def _both(dtype: DeviceType, raw: bytes) -> tuple[Result, Result]:
    topic = telemetry_topic(dtype.domain, f"dev-{dtype.name}")
    fast = DECODER.decode(topic, raw, NOW)
    with mock.patch.object(contract, "fast_payload", lambda _t: None):
        slow = DECODER.decode(topic, raw, NOW)
    return fast, slow


def _value(m: Metric) -> st.SearchStrategy[Any]:
    low = m.minimum if m.minimum is not None else -1000.0
    high = m.maximum if m.maximum is not None else 1000.0
    near = st.one_of(st.floats(low - 1, high + 1, allow_nan=False), st.sampled_from([low, high]),
                     st.integers(int(low) - 2, int(high) + 2))
    odd = st.one_of(st.none(), st.booleans(), st.text(max_size=3), st.just([1]), st.just(1e300),
                    st.integers(2**62, 2**70), st.sampled_from(["NaN", "Infinity"]))
    return st.one_of(near, near, odd)


def _ts() -> st.SearchStrategy[Any]:
    instants = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2027, 1, 1),
                            timezones=st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(-timedelta(hours=5,
                                                       minutes=30))]))
    spelled = st.tuples(instants, st.sampled_from(["seconds", "milliseconds", "microseconds", "auto"]),
                        st.booleans()).map(lambda t: t[0].isoformat(timespec=t[1], sep="T" if t[2] else " "))
    return st.one_of(spelled, spelled.map(lambda s: s.replace("+00:00", "Z")), spelled.map(lambda s: s[:19]),
                     st.integers(-10**13, 2 * 10**12), st.integers(1_700_000_000_000, 1_800_000_000_000),
                     st.floats(allow_nan=False), st.booleans(), st.none(), st.text(max_size=30),
                     st.just("2026-02-30T10:00:00+08:00"), st.just("2026-11-26T16:00:00.1234567+08:00"))


def _good(m: Metric) -> st.SearchStrategy[Any]:
    if m.kind == "bool":
        return st.booleans()
    assert m.minimum is not None and m.maximum is not None
    ints = st.integers(int(m.minimum), int(m.maximum))
    return ints if m.kind == "int" else st.one_of(st.floats(m.minimum, m.maximum), ints)


def _good_ts() -> st.SearchStrategy[Any]:
    instants = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2026, 11, 26),
                            timezones=st.sampled_from([UTC, timezone(timedelta(hours=8))]))
    return st.one_of(st.integers(1_600_000_000_000, 1_764_144_000_000),
                     instants.map(lambda t: t.isoformat(timespec="milliseconds")))


@st.composite
def payloads(draw: st.DrawFn) -> tuple[DeviceType, bytes]:
    """Mostly valid payloads with the odd fault, and payloads with faults anywhere."""
    dtype = CATALOG[draw(st.sampled_from(TYPES))]
    clean = draw(st.booleans())
    body: dict[str, Any] = {}
    if clean or draw(st.integers(0, 9)):
        body["ts"] = draw(_good_ts() if clean else _ts())
    if draw(st.booleans()):
        body["seq"] = draw(st.one_of(st.integers(0, 2**63 - 1), st.none()) if clean else
                           st.one_of(st.integers(-2, 2**64), st.none(), st.text(max_size=2), st.floats(0, 9)))
    for m in dtype.metrics:
        if draw(st.integers(0, 3)):
            body[m.name] = draw(_good(m) if clean and draw(st.integers(0, 9)) else _value(m))
    if not draw(st.integers(0, 7)):
        body[draw(st.sampled_from(["firmware", "period", "backfill", "flags"]))] = draw(
            st.sampled_from(["x", "hour", True, None, {}]))
    raw = json.dumps(body)
    for token in ("NaN", "Infinity"):
        raw = raw.replace(f'"{token}"', token)
    return dtype, raw.encode()


@settings(max_examples=800, deadline=None)
@given(payloads())
def test_fast_path_decodes_exactly_as_the_model(case: tuple[DeviceType, bytes]) -> None:
    dtype, raw = case
    fast, slow = _both(dtype, raw)
    event(type(slow).__name__ if isinstance(slow, Reading) else f"rejected: {getattr(slow, 'reason', '')}")
    assert fast == slow
    if isinstance(slow, Reading):
        assert isinstance(fast, Reading)
        assert list(fast.values.items()) == list(slow.values.items())  # same order and types (7 → 7.0)
        assert [type(v) for v in fast.values.values()] == [type(v) for v in slow.values.values()]
        assert fast.ts.tzinfo == slow.ts.tzinfo


def test_common_payloads_take_the_fast_path() -> None:
    air = fast_payload(CATALOG["air_station"])
    assert air is not None
    found = air.read(b'{"ts":1764144000000,"seq":3,"pm25":35,"pm10":60.1,"no2":40.2}')
    assert found == (1764144000000, 3, {"pm25": 35.0, "pm10": 60.1, "no2": 40.2})
    found = air.read(b'{"ts":"2026-11-26T16:00:00.250+08:00","pm25":35.5}')
    assert found is not None and found[0] == datetime(2026, 11, 26, 8, 0, 0, 250_000, tzinfo=UTC)
    # Left to the model: it words the rejection, or decides on fields the fast path does not read.
    for raw in (b'{"ts":1764144000000,"pm25":5000.0}', b'{"ts":1764144000000}', b'{"pm25":1.0}',
                b'{"ts":"2026-11-26 16:00:00+08:00","pm25":1.0}', b'{"ts":1764144000000,"pm25":1.0,"period":"hour"}',
                b'{"ts":1764144000000,"pm25":NaN}', b'[1]', b'{"ts":1764144000000,"pm25":true}'):
        assert air.read(raw) is None, raw


def test_types_with_cross_field_rules_always_use_the_model() -> None:
    # Their payload bases add validators (occupied <= total, correct <= inspected) the fast path does not know.
    assert fast_payload(CATALOG["parking_lot"]) is None
    assert fast_payload(CATALOG["sorting_point"]) is None
    assert all(fast_payload(CATALOG[name]) is not None
               for name in ("air_station", "water_station", "smart_bin", "structure_monitor"))
