"""Edges of the standards functions that the worked examples leave open: exact validity counts, guards on their
inputs, negative tilts, and what a water class result says about the water body and its target."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from gulou.rules.standards import tables
from gulou.rules.standards.black_odour import black_odour
from gulou.rules.standards.structure import tier, tilt_limit_sourced, tilt_ratio
from gulou.rules.standards.validity import annual_mean, hourly_value, o3_8h_mean
from gulou.rules.standards.water import is_lake, water_class
from gulou.timeutil import CHINA_TZ

YEAR = 2026


def _minimum(key: str) -> int:
    return int(tables.gb3095().validity[key].value)


def _days_with(total: int) -> list[tuple[date, float | None]]:
    """``total`` valid days of YEAR, spread so that every month keeps at least its own minimum."""
    need = {m: _minimum("annual_min_days_february" if m == 2 else "annual_min_days_per_month") for m in range(1, 13)}
    days = [date(YEAR, 1, 1) + timedelta(days=i) for i in range(365)]
    by_month: dict[int, list[date]] = {m: [d for d in days if d.month == m] for m in range(1, 13)}
    drop = 365 - total
    while drop:
        month = max(by_month, key=lambda m: len(by_month[m]) - need[m])
        assert len(by_month[month]) > need[month], "cannot drop more days without breaking a month"
        by_month[month].pop()
        drop -= 1
    return [(d, 10.0) for m in range(1, 13) for d in by_month[m]]


def test_annual_mean_is_valid_from_exactly_the_minimum_days() -> None:
    need = _minimum("annual_min_days")
    assert need == 324  # GB 3095-2012 table 4: at least 324 daily values a year
    valid = annual_mean(_days_with(need))
    assert valid.value == 10.0 and valid.count == need and valid.reason is None
    short = annual_mean(_days_with(need - 1))
    assert short.value is None and short.count == need - 1
    assert short.reason == f"{need - 1} valid daily values, at least {need} needed"


def test_annual_mean_names_the_short_months() -> None:
    feb_need = _minimum("annual_min_days_february")
    days = [(date(YEAR, 1, 1) + timedelta(days=i), 1.0) for i in range(365)]
    february = [d for d in days if d[0].month == 2]
    kept = [d for d in days if d[0].month != 2] + february[:feb_need - 1]
    result = annual_mean(kept)
    assert result.value is None and result.reason == f"too few daily values in month 2: {feb_need - 1} < {feb_need}"


def test_annual_mean_takes_china_days_and_refuses_a_day_twice() -> None:
    # 16:30 UTC on 31 Dec is 00:30 on 1 Jan in Beijing: a day of the next year, not of this one.
    late = datetime(YEAR - 1, 12, 31, 16, 30, tzinfo=UTC)
    assert annual_mean([(late, 1.0)]).count == 1
    with pytest.raises(ValueError, match="more than one calendar year"):
        annual_mean([(late, 1.0), (date(YEAR - 1, 6, 1), 1.0)])
    with pytest.raises(ValueError, match="two daily values for 2026-01-01"):
        annual_mean([(late, 1.0), (date(YEAR, 1, 1), 2.0)])


def test_hourly_value_interval_guard_and_default() -> None:
    hour = datetime(YEAR, 5, 1, 10, tzinfo=CHINA_TZ)
    need = _minimum("hourly_min_minutes")
    samples = [(hour + timedelta(minutes=m), 5.0) for m in range(need)]
    assert hourly_value(samples).value == 5.0  # one sample a minute by default: exactly the minimum
    assert hourly_value(samples[:-1]).value is None
    assert hourly_value(samples[:1], interval_s=1).value is None  # a short interval is allowed, just not enough
    for bad in (0, -60):
        with pytest.raises(ValueError, match="interval_s must be positive"):
            hourly_value(samples, interval_s=bad)


def test_o3_8h_mean_explains_an_invalid_window() -> None:
    need = _minimum("o3_8h_min_hours")
    start = datetime(YEAR, 7, 1, 8, tzinfo=CHINA_TZ)
    window = [(start + timedelta(hours=h), 100.0) for h in range(need - 1)]
    result = o3_8h_mean(window)
    assert result.value is None
    assert result.reason == f"{need - 1} valid hourly values in the 8 h window, at least {need} needed"


def test_tilts_either_way_give_the_same_ratio() -> None:
    assert tilt_ratio(-1.0, 0.0) == tilt_ratio(1.0, 0.0) > 0
    assert tilt_ratio(0.0, -2.0) == tilt_ratio(0.0, 2.0)
    assert tilt_ratio(-1.0, -1.0) == tilt_ratio(1.0, 1.0)


def test_tier_and_tilt_limit_guards() -> None:
    for limit in (0, -0.03):
        with pytest.raises(ValueError, match="limit must be positive"):
            tier(0.01, limit)
    for storeys in (True, 0, 2.0):
        with pytest.raises(ValueError, match="storeys must be a positive integer"):
            tilt_limit_sourced(storeys)  # type: ignore[arg-type]


def test_black_odour_depth_guard() -> None:
    with pytest.raises(ValueError, match="depth_cm must be positive"):
        black_odour({"do": 1.0}, depth_cm=0)
    assert black_odour({"do": 1.0}, depth_cm=1).level in ("none", "light", "severe")


def test_water_body_defaults_to_a_river() -> None:
    assert is_lake(None) is False and is_lake(None, lake=True) is True
    river = water_class({"tp": 0.06}, target="III")
    lake = water_class({"tp": 0.06}, target="III", water_body="lake")
    assert river.target == "III" and river.standard.endswith("2002")
    assert lake.standard.endswith(" (lakes and reservoirs)")
    # TP 0.06 meets the river's class III (0.2) but not a lake's (0.05): the lake's multiple is against 0.05.
    assert river.klass == "II" and river.exceedance.get("tp") is None
    assert lake.klass == "IV" and lake.exceedance["tp"] == pytest.approx(0.2)
