"""Waste sorting rate per street and housing warnings per building over a report's period."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import polars as pl

from gulou.devices.registry import Device, Site
from gulou.reports.model import BuildingStatus, StreetSorting, Warning
from gulou.rules.standards import component_limit, rate_per_day, tier, tilt_limit_sourced, tilt_ratio
from gulou.rules.standards.structure import crack_limit

log = logging.getLogger(__name__)

DISTRICT = "全区"
SORTING_METRICS = ("inspected", "correct")
STRUCTURE_METRICS = ("tilt_x", "tilt_y", "crack_width", "settlement", "vibration")
TIER_ORDER = ("none", "yellow", "orange", "red")
SETTLEMENT_SPAN = timedelta(days=30)  # the settlement rate is judged per month over the last 30 days
DAYS_PER_MONTH = 30.0


def sorting_by_street(frame: pl.DataFrame, streets: Sequence[str]) -> list[StreetSorting]:
    """Correct rate = correctly sorted / inspected drop-offs per street, then the district as a whole."""
    counted = frame.filter(pl.col("inspected").is_not_null())
    per_street = {r["street"]: r for r in counted.group_by("street").agg(
        pl.col("inspected").sum(), pl.col("correct").fill_null(0).sum(), pl.col("site").n_unique().alias("points"),
    ).iter_rows(named=True)}
    out = [_sorting(street, per_street.get(street)) for street in streets]
    total = {"inspected": sum(s.inspected for s in out), "correct": sum(s.correct for s in out),
             "points": sum(s.points for s in out)}
    out.append(_sorting(DISTRICT, total))
    return out


def _sorting(street: str, row: Mapping[str, object] | None) -> StreetSorting:
    inspected, correct, points = (_int(row.get(k)) if row else 0 for k in ("inspected", "correct", "points"))
    return StreetSorting(street=street, inspected=inspected, correct=correct, points=points,
                         rate=round(correct / inspected, 4) if inspected else None)


def _int(value: object) -> int:
    return int(value) if isinstance(value, int | float) else 0


def housing(frame: pl.DataFrame, devices: Sequence[Device], start: datetime) -> list[BuildingStatus]:
    """Per building: the worst tier of tilt, crack width, settlement rate and vibration over its monitors.

    ``frame`` holds the period's readings and at least the 30 days before its end (for the settlement rate);
    maxima are taken from readings at or after ``start`` (naive Beijing).
    """
    period = _from_baseline(frame.filter(pl.col("local") >= start), devices)
    peaks = _peaks(period)
    rates = _settlement_rates(frame)
    buildings: dict[str, tuple[Site, list[Warning]]] = {}
    for device in devices:
        site = device.site
        warnings = buildings.setdefault(site.id, (site, []))[1]
        warnings.extend(_device_warnings(device, peaks.get(device.id, {}), rates.get(device.id)))
    out = []
    for site, warnings in buildings.values():
        worst = max((w.tier for w in warnings), key=TIER_ORDER.index, default="none")
        out.append(BuildingStatus(site=site.id, name=site.name, street=site.street, storeys=site.storeys,
                                  structure_type=site.structure_type, grade=site.grade, tier=worst,
                                  warnings=warnings))
    return sorted(out, key=lambda b: (-TIER_ORDER.index(b.tier), b.site))


def _from_baseline(frame: pl.DataFrame, devices: Sequence[Device]) -> pl.DataFrame:
    """Tilt angles measured from each inclinometer's installation reading (registry ``tilt_baseline``)."""
    baselines = {d.id: d.tilt_baseline for d in devices if d.tilt_baseline is not None}
    if not baselines or frame.is_empty():
        return frame
    offsets = [pl.col("device_id").replace_strict({k: v[axis] for k, v in baselines.items()}, default=0.0,
                                                  return_dtype=pl.Float64) for axis in (0, 1)]
    return frame.with_columns(pl.col("tilt_x") - offsets[0], pl.col("tilt_y") - offsets[1])


def _peaks(frame: pl.DataFrame) -> dict[str, dict[str, float]]:
    """Per device: the angles of its most tilted reading, its widest crack and its largest vibration."""
    tilt = (pl.col("tilt_x").radians().tan() ** 2 + pl.col("tilt_y").radians().tan() ** 2)
    rows = frame.group_by("device_id").agg(
        pl.col("tilt_x").sort_by(tilt, descending=True, nulls_last=True).first(),
        pl.col("tilt_y").sort_by(tilt, descending=True, nulls_last=True).first(),
        pl.col("crack_width").max(), pl.col("vibration").max())
    return {str(r["device_id"]): {k: float(v) for k, v in r.items() if k != "device_id" and v is not None}
            for r in rows.iter_rows(named=True)}


def _settlement_rates(frame: pl.DataFrame) -> dict[str, float]:
    """Settlement in mm per month: least-squares slope of the daily means over the last 30 days."""
    if frame.is_empty():
        return {}
    latest = frame["local"].max()
    assert isinstance(latest, datetime)
    recent = frame.filter((pl.col("local") > latest - SETTLEMENT_SPAN) & pl.col("settlement").is_not_null())
    daily = recent.group_by("device_id", pl.col("local").dt.truncate("1d").alias("day")).agg(
        pl.col("settlement").mean()).sort("device_id", "day")
    rates: dict[str, float] = {}
    for (device_id,), group in daily.group_by("device_id"):
        slope = rate_per_day(list(zip(group["day"].to_list(), group["settlement"].to_list(), strict=True)))
        if slope is not None:
            rates[str(device_id)] = abs(slope) * DAYS_PER_MONTH
    return rates


def _device_warnings(device: Device, peak: dict[str, float], settlement: float | None) -> list[Warning]:
    site = device.site
    checks: list[tuple[str, float, float, str, str]] = []
    if "tilt_x" in peak and "tilt_y" in peak and site.storeys:
        limit = tilt_limit_sourced(site.storeys)
        checks.append(("tilt", tilt_ratio(peak["tilt_x"], peak["tilt_y"]), limit.value, "ratio", limit.source))
    if "crack_width" in peak and site.structure_type:
        crack = crack_limit(site.structure_type)
        checks.append(("crack_width", peak["crack_width"], crack.value, "mm", crack.source))
    if settlement is not None:
        rule = component_limit("settlement_mm_per_month")
        checks.append(("settlement_rate", settlement, rule.value, "mm/month", rule.source))
    if "vibration" in peak:
        rule = component_limit("vibration_ppv_mm_s")
        checks.append(("vibration", peak["vibration"], rule.value, "mm/s", rule.source))
    out = []
    for metric, value, control, unit, source in checks:
        level = tier(value, control)
        if level != "none":
            out.append(Warning(device_id=device.id, metric=metric, value=round(value, 4), limit=control, unit=unit,
                               tier=level, source=source))
    return out
