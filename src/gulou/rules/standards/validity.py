"""Data validity of air statistics (GB 3095 §8 / HJ 663): hourly, 24 h, O3 8 h, annual means, good-day ratio.

Every minimum comes from the ``validity`` section of gb3095.yaml, named in double backquotes below.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime, timedelta

from pydantic import BaseModel, ConfigDict

from gulou.rules.standards.aqi import air_limit
from gulou.rules.standards.tables import gb3095
from gulou.timeutil import CHINA_TZ

log = logging.getLogger(__name__)

Series = Sequence[tuple[datetime, float | None]]
DailySeries = Sequence[tuple[date, float | None]]
FEBRUARY = 2


class ValidityResult(BaseModel):
    """A statistic and whether it is valid: ``value`` is None with a ``reason`` when the data are too few."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: float | None
    count: int
    reason: str | None = None


def _minimum(key: str) -> int:
    return int(gb3095().validity[key].value)


def _local(ts: datetime) -> datetime:
    """China-time wall clock of a stamp (naive stamps are taken as China time)."""
    return ts if ts.tzinfo is None else ts.astimezone(CHINA_TZ).replace(tzinfo=None)


def _hour(ts: datetime) -> datetime:
    return _local(ts).replace(minute=0, second=0, microsecond=0)


def _by_hour(hourly: Series) -> dict[datetime, float | None]:
    table: dict[datetime, float | None] = {}
    for ts, value in hourly:
        hour = _hour(ts)
        if hour in table:
            raise ValueError(f"two hourly values for {hour:%Y-%m-%d %H}:00")
        table[hour] = value
    return table


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def hourly_value(samples: Series, interval_s: float = 60.0) -> ValidityResult:
    """Mean of the samples of one clock hour; valid with ``hourly_min_minutes`` of sampling (samples × interval)."""
    if interval_s <= 0:
        raise ValueError(f"interval_s must be positive, got {interval_s!r}")
    hours = {_hour(ts) for ts, _ in samples}
    if len(hours) > 1:
        raise ValueError("hourly_value: samples span more than one clock hour")
    valid = {_local(ts): v for ts, v in samples if v is not None}
    minutes = min(60.0, len(valid) * interval_s / 60.0)
    need = _minimum("hourly_min_minutes")
    if minutes < need:
        return ValidityResult(value=None, count=len(valid),
                              reason=f"{minutes:g} min of sampling in the hour, at least {need} needed")
    return ValidityResult(value=_mean(list(valid.values())), count=len(valid))


def daily_mean(hourly: Series) -> ValidityResult:
    """24 h mean of one day's hourly values; valid with ``daily_min_hours`` valid hours."""
    table = _by_hour(hourly)
    if len({h.date() for h in table}) > 1:
        raise ValueError("daily_mean: hourly values span more than one China-time day")
    values = [v for v in table.values() if v is not None]
    need = _minimum("daily_min_hours")
    if len(values) < need:
        return ValidityResult(value=None, count=len(values),
                              reason=f"{len(values)} valid hourly values, at least {need} needed")
    return ValidityResult(value=_mean(values), count=len(values))


def o3_8h_mean(window: Series) -> ValidityResult:
    """O3 8 h moving mean of the hourly values in one 8 h window; valid with ``o3_8h_min_hours`` valid hours."""
    table = _by_hour(window)
    if table and max(table) - min(table) > timedelta(hours=7):
        raise ValueError("o3_8h_mean: hourly values span more than 8 hours")
    values = [v for v in table.values() if v is not None]
    need = _minimum("o3_8h_min_hours")
    if len(values) < need:
        return ValidityResult(value=None, count=len(values),
                              reason=f"{len(values)} valid hourly values in the 8 h window, at least {need} needed")
    return ValidityResult(value=_mean(values), count=len(values))


def o3_daily_max_8h(hourly: Series, limit: float | None = None) -> ValidityResult:
    """Daily max of the O3 8 h means ending 08:00-24:00 (hours labelled by their start, windows 00-07 .. 16-23).

    Valid with ``o3_daily_max_8h_min_values`` valid 8 h values, or with fewer when the maximum already exceeds the limit
    (GB 3095 class II daily max 8 h limit of the day's rule set unless given).
    """
    table = _by_hour(hourly)
    days = {h.date() for h in table}
    if len(days) > 1:
        raise ValueError("o3_daily_max_8h: hourly values span more than one China-time day")
    if not days:
        return ValidityResult(value=None, count=0, reason="no hourly values")
    day = days.pop()
    by_hour = {h.hour: v for h, v in table.items() if v is not None}
    need_hours = _minimum("o3_8h_min_hours")
    means = []
    for start in range(0, 17):
        window = [by_hour[h] for h in range(start, start + 8) if h in by_hour]
        if len(window) >= need_hours:
            means.append(_mean(window))
    need = _minimum("o3_daily_max_8h_min_values")
    if len(means) >= need:
        return ValidityResult(value=max(means), count=len(means))
    bound = air_limit("o3", "8h", day).value if limit is None else limit
    if means and max(means) > bound:
        return ValidityResult(value=max(means), count=len(means),
                              reason=f"only {len(means)} valid 8 h values, but the maximum exceeds the limit {bound:g}")
    return ValidityResult(value=None, count=len(means),
                          reason=f"{len(means)} valid 8 h values between 08:00 and 24:00, at least {need} needed")


def annual_mean(daily: DailySeries) -> ValidityResult:
    """Annual mean of one calendar year's daily values; valid with ``annual_min_days`` and enough in every month."""
    per_month: dict[int, list[float]] = {m: [] for m in range(1, 13)}
    years = set()
    seen: set[date] = set()
    for day, value in daily:
        d = _local(day).date() if isinstance(day, datetime) else day
        if d in seen:
            raise ValueError(f"two daily values for {d.isoformat()}")
        seen.add(d)
        years.add(d.year)
        if value is not None:
            per_month[d.month].append(value)
    if len(years) > 1:
        raise ValueError("annual_mean: daily values span more than one calendar year")
    values = [v for month in per_month.values() for v in month]
    need_year = _minimum("annual_min_days")
    if len(values) < need_year:
        return ValidityResult(value=None, count=len(values),
                              reason=f"{len(values)} valid daily values, at least {need_year} needed")
    short = []
    for month, month_values in per_month.items():
        need = _minimum("annual_min_days_february" if month == FEBRUARY else "annual_min_days_per_month")
        if len(month_values) < need:
            short.append(f"month {month}: {len(month_values)} < {need}")
    if short:
        return ValidityResult(value=None, count=len(values), reason="too few daily values in " + "; ".join(short))
    return ValidityResult(value=_mean(values), count=len(values))


def good_day_ratio(daily_aqi: Sequence[tuple[date, int | None]]) -> ValidityResult:
    """Share of valid days with AQI ≤ ``good_day_max_aqi`` (优良天数比例); None without valid days."""
    valid = [a for _, a in daily_aqi if a is not None]
    if not valid:
        return ValidityResult(value=None, count=0, reason="no valid days")
    good_max = gb3095().validity["good_day_max_aqi"].value
    return ValidityResult(value=sum(1 for a in valid if a <= good_max) / len(valid), count=len(valid))
