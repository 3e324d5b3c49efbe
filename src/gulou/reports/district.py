"""District figures from station daily values: district daily AQI, good days, heavy days, period means, capture."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import polars as pl

from gulou.devices.registry import Device
from gulou.reports.air import DAILY_INPUTS, POLLUTANTS, invalid_reasons, minimum
from gulou.reports.labels import POLLUTANT_NAMES
from gulou.reports.model import (
    CalendarDay,
    Capture,
    DayAqi,
    MonthFigure,
    O3Figure,
    PeriodMean,
    StationSummary,
)
from gulou.reports.stations import indicative
from gulou.rules.standards import CHINA_TZ, aqi, good_day_ratio
from gulou.rules.standards.tables import hj633

log = logging.getLogger(__name__)

# Shown precision of concentrations (µg/m³ to 0.1, CO mg/m³ to 0.01). The AQI is computed from the shown
# values, so anyone can redo it from the report.
DECIMALS: dict[str, int] = {"co": 2}
HEAVY_ABOVE_AQI = 200  # 重度污染 and worse: AQI > 200 (HJ 633 bands)
FEBRUARY = 2


def shown(name: str, value: float | None) -> float | None:
    """A concentration rounded half-up to its shown precision."""
    if value is None:
        return None
    step = Decimal(1).scaleb(-DECIMALS.get(name.removesuffix("_8h"), 1))
    return float(Decimal(repr(float(value))).quantize(step, rounding=ROUND_HALF_UP))


def days_between(first: date, last: date) -> list[date]:
    """Every date from ``first`` to ``last`` inclusive."""
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _day_aqi(day: date, values: dict[str, float | None], stations: dict[str, int], reasons: list[str],
             is_indicative: bool) -> DayAqi:
    concentrations = {p: shown(p, values.get(p)) for p in DAILY_INPUTS}
    complete = {p: v for p, v in concentrations.items() if v is not None}
    if reasons or len(complete) < len(DAILY_INPUTS):
        return DayAqi(date=day, aqi=None, category=None, colour=None, primary_pollutants=[], valid=False,
                      concentrations=concentrations, stations=stations, reasons=reasons or ["数据不全"],
                      standard=None, indicative=is_indicative)
    result = aqi(complete, day, "daily")
    return DayAqi(date=day, aqi=result.aqi, category=result.category, colour=result.colour,
                  primary_pollutants=result.primary_pollutants, valid=True, concentrations=concentrations,
                  stations=stations, reasons=[], standard=result.standard, indicative=is_indicative)


def district_days(daily: pl.DataFrame, evaluation: Sequence[Device], days: Sequence[date]) -> list[DayAqi]:
    """District daily AQI per day: each pollutant's mean over the evaluation stations with a valid daily value."""
    ids = [d.id for d in evaluation]
    is_indicative = any(indicative(d) for d in evaluation)
    rows = daily.filter(pl.col("device_id").is_in(ids)).group_by("day").agg(
        [pl.col(p).mean().alias(p) for p in DAILY_INPUTS] + [pl.col(p).count().alias(f"{p}_n") for p in DAILY_INPUTS])
    by_day = {r["day"]: r for r in rows.iter_rows(named=True)}
    out = []
    for day in days:
        row = by_day.get(day)
        if row is None:
            out.append(_day_aqi(day, {}, {}, ["无评价点位数据"], is_indicative))
            continue
        stations = {p: int(row[f"{p}_n"]) for p in DAILY_INPUTS}
        missing = [POLLUTANT_NAMES[p] for p in DAILY_INPUTS if stations[p] == 0]
        reasons = [f"{'、'.join(missing)}：{len(ids)} 个评价点位均无有效日均值"] if missing else []
        out.append(_day_aqi(day, {p: row[p] for p in DAILY_INPUTS}, stations, reasons, is_indicative))
    return out


def station_summaries(daily: pl.DataFrame, devices: Sequence[Device], evaluation: Sequence[Device],
                      days: Sequence[date]) -> list[StationSummary]:
    """Each air station's daily AQI over the days, labelled indicative for micro-stations."""
    evaluation_ids = {d.id for d in evaluation}
    good_max = int(minimum("good_day_max_aqi"))
    rows = daily.filter(pl.col("day").is_in(list(days)))
    by_key = {(r["device_id"], r["day"]): r for r in rows.iter_rows(named=True)}
    out = []
    for device in devices:
        station_days = []
        for day in days:
            row = by_key.get((device.id, day))
            if row is None:
                station_days.append(_day_aqi(day, {}, {}, ["无数据"], indicative(device)))
                continue
            station_days.append(_day_aqi(day, {p: row[p] for p in DAILY_INPUTS}, {}, invalid_reasons(row),
                                         indicative(device)))
        valid = [d.aqi for d in station_days if d.aqi is not None]
        out.append(StationSummary(
            device_id=device.id, name=device.name, site=device.site.id, street=device.street,
            indicative=indicative(device), evaluation=device.id in evaluation_ids, valid_days=len(valid),
            good_days=sum(1 for a in valid if a <= good_max), max_aqi=max(valid) if valid else None,
            days=station_days))
    return out


def good_days(days: Sequence[DayAqi]) -> tuple[float | None, int, int]:
    """Good-day ratio (AQI <= 100 over valid days), good days, valid days."""
    result = good_day_ratio([(d.date, d.aqi) for d in days])
    good = sum(1 for d in days if d.aqi is not None and d.aqi <= minimum("good_day_max_aqi"))
    return result.value, good, result.count


def heavy_pollution_days(days: Sequence[DayAqi]) -> int:
    """Days with a district daily AQI above 200 (重度污染 or worse)."""
    return sum(1 for d in days if d.aqi is not None and d.aqi > HEAVY_ABOVE_AQI)


def needed_days(kind: str, days: Sequence[date]) -> tuple[int, dict[int, int]]:
    """Daily values a period mean needs: all for a day, 27 (February 25) for a month, 324 and per month for a year."""
    per_month = {m: minimum("annual_min_days_february" if m == FEBRUARY else "annual_min_days_per_month")
                 for m in {d.month for d in days}}
    if kind == "daily":
        return len(days), {}
    if kind == "month":
        return next(iter(per_month.values())), {}
    return minimum("annual_min_days"), per_month


def _validity(kind: str, days: Sequence[DayAqi], name: str) -> tuple[list[float], bool, int, str | None]:
    values = [(d.date, d.concentrations.get(name)) for d in days]
    present = [v for _, v in values if v is not None]
    needed, per_month = needed_days(kind, [d for d, _ in values])
    reasons = []
    if len(present) < needed:
        reasons.append(f"有效日均值 {len(present)} 个，需 {needed} 个")
    for month, need in sorted(per_month.items()):
        count = sum(1 for d, v in values if v is not None and d.month == month)
        if count < need:
            reasons.append(f"{month}月 {count} 个，需 {need} 个")
    return present, not reasons, needed, "; ".join(reasons) or None


def period_mean(kind: str, days: Sequence[DayAqi], name: str = "pm25", unit: str = "µg/m³") -> PeriodMean:
    """Mean of the district daily values over the period, with GB 3095's validity (counts shown when short)."""
    present, valid, needed, reason = _validity(kind, days, name)
    value = shown(name, sum(present) / len(present)) if present else None
    return PeriodMean(value=value, valid=valid, days=len(present), needed=needed, reason=reason, unit=unit)


def o3_figure(kind: str, days: Sequence[DayAqi]) -> O3Figure:
    """Mean and 90th percentile (nearest rank) of the district O3 daily max 8 h values."""
    present, valid, needed, reason = _validity(kind, days, "o3_8h")
    mean = shown("o3", sum(present) / len(present)) if present else None
    p90 = None
    if present:
        ordered = sorted(present)
        p90 = ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]
    return O3Figure(mean=mean, p90=p90, valid=valid, days=len(present), needed=needed, reason=reason, unit="µg/m³")


def aqi_colour(value: int | None) -> str:
    """HJ 633 band colour of an AQI (light grey without one)."""
    if value is None:
        return "#D9D9D9"
    return next(c.colour for c in hj633().categories if c.max_aqi is None or value <= c.max_aqi)


def calendar_days(days: Sequence[DayAqi]) -> list[CalendarDay]:
    """Calendar cells of the days: AQI, category and HJ 633 colour."""
    return [CalendarDay(date=d.date, aqi=d.aqi, category=d.category, colour=aqi_colour(d.aqi)) for d in days]


def monthly_figures(days: Sequence[DayAqi]) -> list[MonthFigure]:
    """Good-day ratio, heavy days and PM2.5 mean of each month in the days."""
    months: dict[str, list[DayAqi]] = {}
    for day in days:
        months.setdefault(f"{day.date.year:04d}-{day.date.month:02d}", []).append(day)
    out = []
    for month, month_days in months.items():
        ratio, good, valid = good_days(month_days)
        pm25 = [v for d in month_days if (v := d.concentrations.get("pm25")) is not None]
        out.append(MonthFigure(month=month, good_day_ratio=None if ratio is None else round(ratio, 4), good_days=good,
                               valid_days=valid, heavy_pollution_days=heavy_pollution_days(month_days),
                               pm25_mean=shown("pm25", sum(pm25) / len(pm25)) if pm25 else None,
                               pm25_days=len(pm25)))
    return out


def air_capture(grid: pl.DataFrame, devices: Sequence[Device], counts: dict[str, int], start: datetime,
                until: datetime) -> list[Capture]:
    """Valid hours (every pollutant valid) and stored readings per station against the hours due in the period."""
    first, last = _naive(start), _naive(until)
    hours = max(0, int((until - start).total_seconds() // 3600))
    in_period = grid.filter((pl.col("hour") >= first) & (pl.col("hour") < last))
    complete = pl.all_horizontal([pl.col(p).is_not_null() for p in POLLUTANTS])
    valid = dict(in_period.group_by("device_id").agg(complete.sum().alias("n")).iter_rows())
    out = []
    for device in devices:
        valid_hours = int(valid.get(device.id, 0))
        out.append(_capture(device, counts, start, until, hours, valid_hours))
    return out


def readings_capture(devices: Sequence[Device], counts: dict[str, int], start: datetime,
                     until: datetime) -> list[Capture]:
    """Stored readings against the readings due, for stations without an hourly validity rule."""
    return [_capture(d, counts, start, until, None, None) for d in devices]


def _capture(device: Device, counts: dict[str, int], start: datetime, until: datetime, hours: int | None,
             valid_hours: int | None) -> Capture:
    due = max(0, int((until - start).total_seconds() // device.interval_s))
    stored = counts.get(device.id, 0)
    rate = None if not hours or valid_hours is None else round(valid_hours / hours, 4)
    return Capture(device_id=device.id, name=device.name, domain=device.domain, street=device.street,
                   indicative=device.domain == "air" and indicative(device), expected_hours=hours,
                   valid_hours=valid_hours, rate=rate, readings=stored, expected_readings=due,
                   readings_rate=round(min(stored, due) / due, 4) if due else None)


def _naive(moment: datetime) -> datetime:
    """Naive Beijing wall clock of an aware datetime (the grid's hours)."""
    return moment.astimezone(CHINA_TZ).replace(tzinfo=None)
