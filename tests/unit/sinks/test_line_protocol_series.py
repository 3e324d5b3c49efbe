"""A plain reading's line, built from its device's series text kept ready, is the generic encoding exactly."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gulou.devices.catalog import CATALOG
from gulou.tsdb.line_protocol import _typed, encode_line, point_line
from gulou.tsdb.records import Point

# Text with the characters line protocol escapes, and non-ASCII street and river names.
text = st.text(alphabet=st.sampled_from(list("ab, =\\\"\n\t鼓楼河-_1")), min_size=1, max_size=8)
values = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-(2**40), 2**40), st.booleans())


@st.composite
def points(draw: st.DrawFn) -> Point:
    dtype = CATALOG[draw(st.sampled_from(sorted(CATALOG)))]
    names = [m.name for m in dtype.metrics] + ["not_a_metric"]
    vals = draw(st.dictionaries(st.sampled_from(names), values, min_size=1, max_size=5))
    tags = draw(st.dictionaries(st.sampled_from(["river", "category", "lot_type"]), st.one_of(text, st.just("")),
                                max_size=3))
    return Point(device_id=draw(text), domain=draw(st.sampled_from([dtype.domain, "a b,c"])), type=dtype.name,
                 street=draw(text), site=draw(text), ts_ms=draw(st.integers(0, 2**45)), values=vals, tags=tags)


@settings(max_examples=400, deadline=None)
@given(points())
def test_plain_reading_line_is_the_generic_encoding(point: Point) -> None:
    tags = {"device": point.device_id, "type": point.type, "street": point.street, "site": point.site, **point.tags}
    fields = {k: _typed(point.type, k, v) for k, v in point.values.items()}
    assert point_line(point) == encode_line(point.domain, tags, fields, point.ts_ms)
    # Twice: the second time from the series text kept for the device.
    assert point_line(point) == encode_line(point.domain, tags, fields, point.ts_ms)


def test_int_json_value_of_a_float_metric_is_written_as_a_float() -> None:
    point = Point(device_id="aq-1", domain="air", type="air_station", street="鼓东街道", site="s-1", ts_ms=5,
                  values={"pm25": 7, "pm10": 7.5})
    assert point_line(point) == "air,device=aq-1,site=s-1,street=鼓东街道,type=air_station pm25=7.0,pm10=7.5 5"
