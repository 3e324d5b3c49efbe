"""Data validity (GB 3095 §8 / HJ 663): minimum counts for hourly, 24 h, O3 8 h, annual values; good days."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from gulou.rules.standards import (
    annual_mean,
    daily_mean,
    good_day_ratio,
    hourly_value,
    o3_8h_mean,
    o3_daily_max_8h,
)

CST = timezone(timedelta(hours=8))
DAY = datetime(2026, 7, 1, tzinfo=CST)


def hours(values: Sequence[float | None], start: datetime = DAY) -> list[tuple[datetime, float | None]]:
    return [(start + timedelta(hours=i), v) for i, v in enumerate(values)]


class TestHourlyValue:
    def test_45_minutes_of_one_minute_samples(self) -> None:
        samples = [(DAY + timedelta(minutes=i), 10.0 + i % 2) for i in range(45)]  # 23 x 10, 22 x 11
        result = hourly_value(samples, interval_s=60)
        assert result.value == pytest.approx((23 * 10 + 22 * 11) / 45)
        assert result.count == 45

    def test_44_minutes_is_not_valid(self) -> None:
        samples = [(DAY + timedelta(minutes=i), 10.0) for i in range(44)] + [(DAY + timedelta(minutes=50), None)]
        result = hourly_value(samples, interval_s=60)
        assert result.value is None
        assert result.reason is not None and "44 min" in result.reason

    def test_five_minute_interval(self) -> None:
        nine = [(DAY + timedelta(minutes=5 * i), 20.0) for i in range(9)]  # 9 x 5 min = 45 min
        assert hourly_value(nine, interval_s=300).value == 20.0
        assert hourly_value(nine[:8], interval_s=300).value is None  # 40 min

    def test_samples_must_lie_in_one_hour(self) -> None:
        with pytest.raises(ValueError, match="one clock hour"):
            hourly_value([(DAY, 1.0), (DAY + timedelta(minutes=61), 1.0)])


class TestDailyMean:
    def test_20_valid_hours(self) -> None:
        result = daily_mean(hours([10.0] * 10 + [30.0] * 10 + [None] * 4))
        assert result.value == pytest.approx(20.0)  # (10*10 + 10*30) / 20
        assert result.count == 20

    def test_19_valid_hours_is_not_valid(self) -> None:
        result = daily_mean(hours([10.0] * 19 + [None] * 5))
        assert result.value is None
        assert result.reason == "19 valid hourly values, at least 20 needed"

    def test_one_day_only(self) -> None:
        with pytest.raises(ValueError, match="more than one"):
            daily_mean(hours([1.0] * 25))
        with pytest.raises(ValueError, match="two hourly values"):
            daily_mean([(DAY, 1.0), (DAY + timedelta(minutes=30), 2.0)])


class TestO3EightHour:
    def test_6_of_8_hours(self) -> None:
        result = o3_8h_mean(hours([100.0, 110.0, 120.0, 130.0, 140.0, 150.0, None, None]))
        assert result.value == pytest.approx(125.0)  # (100+110+...+150)/6 = 750/6

    def test_5_of_8_hours_is_not_valid(self) -> None:
        result = o3_8h_mean(hours([100.0] * 5 + [None] * 3))
        assert result.value is None
        assert result.count == 5

    def test_window_spans_8_hours_at_most(self) -> None:
        with pytest.raises(ValueError, match="8 hours"):
            o3_8h_mean(hours([1.0] * 9))


class TestO3DailyMax8h:
    def test_full_day(self) -> None:
        # hours 00..15 at 100, 16..23 at 180: the window 16..23 (ending 24:00) averages 180
        result = o3_daily_max_8h(hours([100.0] * 16 + [180.0] * 8))
        assert result.value == pytest.approx(180.0)
        assert result.count == 17  # windows starting 00..16

    def test_14_valid_8h_values(self) -> None:
        # hours 00..18 present: window k has 19-k hours, >= 6 for k = 0..13 -> 14 windows
        result = o3_daily_max_8h(hours([100.0] * 19))
        assert (result.value, result.count, result.reason) == (100.0, 14, None)

    def test_13_valid_8h_values_is_not_valid(self) -> None:
        # hours 00..17 present: 18-k >= 6 for k = 0..12 -> 13 windows
        result = o3_daily_max_8h(hours([100.0] * 18))
        assert result.value is None
        assert result.count == 13
        assert result.reason is not None and "at least 14" in result.reason

    def test_13_values_valid_anyway_above_the_limit(self) -> None:
        # max 8 h = 200 > 160 (GB 3095 class II daily max 8 h limit, both editions)
        result = o3_daily_max_8h(hours([200.0] * 18))
        assert result.value == pytest.approx(200.0)
        assert result.reason is not None and "exceeds the limit 160" in result.reason
        # exactly at the limit is not above it
        assert o3_daily_max_8h(hours([160.0] * 18)).value is None
        # an explicit limit
        assert o3_daily_max_8h(hours([150.0] * 18), limit=140).value == pytest.approx(150.0)

    def test_hours_outside_a_window_of_six_do_not_count(self) -> None:
        # only hours 00..04 (5 hours) -> no 8 h value at all
        result = o3_daily_max_8h(hours([300.0] * 5))
        assert result.value is None and result.count == 0

    def test_utc_stamps_are_grouped_by_china_day(self) -> None:
        start = datetime(2026, 6, 30, 16, 0, tzinfo=UTC)  # = 2026-07-01 00:00 +08:00
        assert o3_daily_max_8h(hours([100.0] * 24, start)).count == 17


def year_of_days(year: int, skip: dict[int, int] | None = None, value: float = 10.0) -> list[tuple[date, float]]:
    """Every day of the year; skip[m] days left out at the end of month m."""
    skip = skip or {}
    out = []
    day = date(year, 1, 1)
    while day.year == year:
        nxt = day + timedelta(days=1)
        month_days = (date(year + (day.month == 12), day.month % 12 + 1, 1) - timedelta(days=1)).day
        if day.day <= month_days - skip.get(day.month, 0):
            out.append((day, value))
        day = nxt
    return out


class TestAnnualMean:
    def test_full_year(self) -> None:
        result = annual_mean(year_of_days(2025))
        assert (result.value, result.count) == (10.0, 365)

    def test_a_month_below_27_days(self) -> None:
        result = annual_mean(year_of_days(2025, {3: 5}))  # March 26 days, year 360 days
        assert result.value is None
        assert result.reason is not None and "month 3: 26 < 27" in result.reason

    def test_february_needs_25(self) -> None:
        assert annual_mean(year_of_days(2025, {2: 3})).value == 10.0  # February 25 days
        result = annual_mean(year_of_days(2025, {2: 4}))               # February 24 days
        assert result.value is None and "month 2: 24 < 25" in str(result.reason)

    def test_at_least_324_days_in_the_year(self) -> None:
        # every month at its minimum: 11 x 27 + 25 = 322 < 324
        skip = {m: (31 if m in (1, 3, 5, 7, 8, 10, 12) else 30) - 27 for m in range(1, 13)}
        skip[2] = 28 - 25
        result = annual_mean(year_of_days(2025, skip))
        assert result.value is None
        assert result.reason == "322 valid daily values, at least 324 needed"

    def test_none_values_do_not_count(self) -> None:
        days: list[tuple[date, float | None]] = list(year_of_days(2025))
        days[0] = (days[0][0], None)
        assert annual_mean(days).count == 364

    def test_one_year_only(self) -> None:
        with pytest.raises(ValueError, match="one calendar year"):
            annual_mean([(date(2025, 12, 31), 1.0), (date(2026, 1, 1), 1.0)])


def test_good_day_ratio() -> None:
    days: list[tuple[date, int | None]] = [
        (date(2026, 7, 1), 50), (date(2026, 7, 2), 100), (date(2026, 7, 3), 101), (date(2026, 7, 4), None)]
    result = good_day_ratio(days)
    assert result.value == pytest.approx(2 / 3)  # AQI 50 and 100 good, 101 not, the None day not valid
    assert result.count == 3
    empty = good_day_ratio([(date(2026, 7, 1), None)])
    assert empty.value is None and empty.reason == "no valid days"
