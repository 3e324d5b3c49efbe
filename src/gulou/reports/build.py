"""Build a daily, monthly or yearly report from the store and the registry."""

from __future__ import annotations

import calendar
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl

from gulou.devices.registry import Device, Registry, Site
from gulou.reports import air, city, district, water
from gulou.reports.cache import DailyCache
from gulou.reports.model import DayAqi, Period, Report, ReportKind, RiverOdour
from gulou.reports.source import StoreSource
from gulou.reports.stations import evaluation_stations, indicative, water_body
from gulou.reports.targets import TargetsFile, YearToDate, evaluate, load_targets
from gulou.rules.standards import CHINA_TZ, annual_mean

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
KIND_WORDS: dict[str, str] = {"daily": "日报", "month": "月报", "year": "年报"}


def period_for(kind: ReportKind, when: date, now: datetime) -> Period:
    """The period a report covers (Beijing time), cut at the last full hour before ``now`` while it runs."""
    if kind == "daily":
        first, label = when, f"{when.year}年{when.month}月{when.day}日"
        after = first + timedelta(days=1)
    elif kind == "month":
        first, label = when.replace(day=1), f"{when.year}年{when.month}月"
        after = (first + timedelta(days=32)).replace(day=1)
    else:
        first, label = date(when.year, 1, 1), f"{when.year}年"
        after = date(when.year + 1, 1, 1)
    start, end = _midnight(first), _midnight(after)
    current = now.astimezone(CHINA_TZ)
    if current <= start:
        raise ValueError(f"the period {label} has not started yet (now {current.isoformat(timespec='minutes')})")
    until = min(end, current.replace(minute=0, second=0, microsecond=0))
    if until < end:
        label += f"（截至{until.month}月{until.day}日{until.hour}时）"
    return Period(kind=kind, label=label, start=start, end=end, data_until=max(until, start), complete=until >= end)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), CHINA_TZ)


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(CHINA_TZ).replace(tzinfo=None)


def _days(start: datetime, until: datetime) -> list[date]:
    last = (until - timedelta(microseconds=1)).astimezone(CHINA_TZ).date()
    return district.days_between(start.astimezone(CHINA_TZ).date(), max(last, start.astimezone(CHINA_TZ).date()))


@dataclass
class _Air:
    grid: pl.DataFrame
    daily: pl.DataFrame
    days: list[date]
    district_days: list[DayAqi]


def _month_after(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def _air(source: StoreSource, devices: list[Device], evaluation: list[Device], start: datetime, until: datetime,
         cache: DailyCache | None = None, keep_from: datetime | None = None, progress: Progress | None = None) -> _Air:
    """Station daily values and district days from ``start`` to ``until``.

    Whole months ending by ``keep_from`` come from the cache when it has them; the rest is computed (and its
    complete months cached). The hour grid covers only the computed part, which always holds ``keep_from`` on.
    """
    ids = [d.id for d in devices]
    keep_from = keep_from or start
    parts: list[pl.DataFrame] = []
    fresh = start
    month = start.astimezone(CHINA_TZ).date().replace(day=1)
    while cache is not None and _midnight(_month_after(month)) <= min(keep_from, until):
        hit = cache.get(month, source.count("air", _midnight(month), _midnight(_month_after(month))), ids)
        if hit is None:
            break
        parts.append(hit)
        fresh = _midnight(_month_after(month))
        month = _month_after(month)
    days = _days(fresh, until)
    slices = source.iter_readings("air", fresh, until, air.POLLUTANTS)
    if progress is not None:
        slices = _announced(slices, progress, fresh, until)
    grid, daily = air.station_days(slices, devices, days[0], days[-1])
    if cache is not None:
        month = days[0].replace(day=1)
        while _midnight(_month_after(month)) <= until:
            first, after = _midnight(month), _midnight(_month_after(month))
            part = daily.filter((pl.col("day") >= month) & (pl.col("day") < _month_after(month)))
            cache.put(month, source.count("air", first, after), ids, part)
            month = _month_after(month)
    daily = pl.concat([*parts, daily]) if parts else daily
    all_days = _days(start, until)
    return _Air(grid, daily, all_days, district.district_days(daily, evaluation, all_days))


def _announced(slices: Iterator[pl.DataFrame], progress: Progress, start: datetime,
               until: datetime) -> Iterator[pl.DataFrame]:
    """The slices, saying how far the reading has come (a year of minute data takes a while)."""
    for frame in slices:
        yield frame
        done = min(until, start + timedelta(days=7))
        progress(f"air readings to {done.astimezone(CHINA_TZ):%Y-%m-%d}: {frame.height} readings")
        start = done


def _previous_pm25(source: StoreSource, devices: list[Device], evaluation: list[Device], year: int,
                   cache: DailyCache | None) -> float | None:
    """The previous year's valid annual PM2.5 mean from the store, when it holds that year."""
    start, end = _midnight(date(year - 1, 1, 1)), _midnight(date(year, 1, 1))
    stored = source.counts(start, end)
    if not any(stored.get(d.id) for d in evaluation):
        return None
    previous = _air(source, devices, evaluation, start, end, cache, end)
    result = annual_mean([(d.date, d.concentrations.get("pm25")) for d in previous.district_days])
    return result.value


def build_report(store: Path, registry: Registry, kind: ReportKind, when: date, now: datetime | None = None,
                 targets: TargetsFile | None = None, cache_dir: Path | None = None,
                 progress: Progress | None = None) -> Report:
    """The report of ``kind`` for the day, month or year containing ``when``, from the store file.

    With ``cache_dir``, station daily values of complete months are kept there and reused (see ``cache``);
    ``progress`` hears what is being read (for a terminal).
    """
    now = now or datetime.now(CHINA_TZ)
    period = period_for(kind, when, now)
    start, until = period.start, period.data_until
    year_start = _midnight(date(start.year, 1, 1))
    air_devices = registry.by_domain("air")
    evaluation = evaluation_stations(registry)
    with StoreSource(store) as source:
        cache = DailyCache(cache_dir) if cache_dir is not None else None
        ytd_air = _air(source, air_devices, evaluation, year_start, until, cache, start, progress)
        if progress is not None:
            progress("water, waste sorting and housing")
        period_days = [d for d in ytd_air.district_days if d.date >= start.date()]
        counts = source.counts(start, until)
        capture = district.air_capture(ytd_air.grid, air_devices, counts, start, until)
        others = [d for d in registry if d.type in ("water_station", "sorting_point", "structure_monitor")]
        capture += district.readings_capture(others, counts, start, until)

        water_frame = source.readings("water", year_start, until, water.water_metrics())
        sections = water.water_sections(registry.by_domain("water"))
        period_water = water_frame.filter(pl.col("local") >= _naive(start))
        label = "daily" if kind == "daily" else "month"
        water_summary = water.water_summary(period_water, sections, label)
        odour = water.black_odour_by_river(period_water, sections, label)
        ytd_sections = (water_summary.sections if kind == "year"
                        else water.section_classes(water_frame, sections, "month"))

        waste = source.readings("waste", year_start, until, city.SORTING_METRICS)
        streets = sorted({d.street for d in registry if d.type == "sorting_point"})
        sorting = city.sorting_by_street(waste.filter(pl.col("local") >= _naive(start)), streets)
        ytd_sorting = city.sorting_by_street(waste, streets)[-1]

        structure_from = min(start, until - city.SETTLEMENT_SPAN)
        structure = source.readings("structure", structure_from, until, city.STRUCTURE_METRICS)
        monitors = [d for d in registry if d.type == "structure_monitor"]
        housing = city.housing(structure, monitors, _naive(start))

        sorting_points = [d for d in registry if d.type == "sorting_point"]
        ytd_counts = source.counts(year_start, until)
        due = sum(max(0, int((until - year_start).total_seconds() // d.interval_s)) for d in sorting_points)
        stored = sum(min(ytd_counts.get(d.id, 0), int((until - year_start).total_seconds() // d.interval_s))
                     for d in sorting_points)
        previous_pm25 = _previous_pm25(source, air_devices, evaluation, start.year, cache)

    ratio, good, valid = district.good_days(period_days)
    # The calendar shows the month to date in a daily report, else the report's own days.
    first_shown = start.date().replace(day=1) if kind == "daily" else start.date()
    shown_days = [d for d in ytd_air.district_days if d.date >= first_shown]
    months_elapsed = (until - timedelta(microseconds=1)).astimezone(CHINA_TZ).month
    latest_odour = _latest_month_odour(water_frame, sections)
    ytd = YearToDate(
        year=start.year, days_elapsed=len([d for d in ytd_air.days if _midnight(d) < until]),
        days_in_year=366 if calendar.isleap(start.year) else 365, district_days=ytd_air.district_days,
        water=ytd_sections, water_sections=_section_groups(sections), months_elapsed=months_elapsed,
        odour=latest_odour, rivers_monitored=len({s.river for s in sections if s.river}), sorting=ytd_sorting,
        sorting_capture=round(stored / due, 4) if due else None, previous_pm25=previous_pm25)
    return Report(
        title=f"鼓楼区生态环境{KIND_WORDS[kind]} {period.label}", period=period, generated_at=now.astimezone(CHINA_TZ),
        standard=sorted({d.standard for d in period_days if d.standard}),
        indicative=any(indicative(d) for d in evaluation), district_daily_aqi=period_days, good_day_ratio=ratio,
        good_days=good, valid_days=valid, heavy_pollution_days=district.heavy_pollution_days(period_days),
        pm25_mean=district.period_mean(kind, period_days), o3_8h=district.o3_figure(kind, period_days),
        stations=district.station_summaries(ytd_air.daily, air_devices, evaluation, [d.date for d in period_days]),
        capture_rate=capture, water=water_summary, black_odour=odour, waste_sorting=sorting, housing=housing,
        targets=evaluate(targets or load_targets(), ytd), calendar=district.calendar_days(shown_days),
        monthly=district.monthly_figures(ytd_air.district_days))


def _section_groups(sections: list[Site]) -> dict[str, int]:
    return {"drinking": sum(1 for s in sections if s.drinking_source),
            "inner": sum(1 for s in sections if not s.drinking_source and water_body(s) == "river")}


def _latest_month_odour(frame: pl.DataFrame, sections: list[Site]) -> list[RiverOdour]:
    if frame.is_empty():
        return []
    latest = frame["local"].max()
    assert isinstance(latest, datetime)
    month = frame.filter(pl.col("local") >= latest.replace(day=1, hour=0, minute=0, second=0, microsecond=0))
    return water.black_odour_by_river(month, sections, "month")
