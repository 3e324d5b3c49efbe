"""Derived metrics of one reading: water class, black-odour level, tilt, occupancy, sorting (AQI: hourly)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from gulou.devices.registry import Device
from gulou.rules.model import DERIVED, HOURLY, WATER_CLASS_ORDINAL, site_target_class

log = logging.getLogger(__name__)
BLACK_ODOUR_LEVEL: dict[str, int] = {"none": 0, "light": 1, "severe": 2}
BLACK_ODOUR_LABEL: dict[int, str] = {0: "无黑臭", 1: "轻度黑臭", 2: "重度黑臭"}
CLASS_BY_ORDINAL: dict[int, str] = {v: k for k, v in WATER_CLASS_ORDINAL.items()}


@dataclass(frozen=True)
class Derived:
    """A metric value with an optional label (class name, category), the standard's own 超标倍数 and its result.

    ``result`` is the standards function's whole answer (``AqiResult`` for an hour's ``aqi``), so whoever needs
    more than the value takes it from here instead of rating again.
    """

    value: float
    label: str | None = None
    exceedance: float | None = None
    result: object | None = None


def _numbers(values: Mapping[str, float | int | bool], names: tuple[str, ...]) -> dict[str, float]:
    return {n: float(values[n]) for n in names if n in values and not isinstance(values[n], bool)}


def derive(metric: str, values: Mapping[str, float | int | bool], device: Device, at: datetime) -> Derived | None:
    """Value of a raw or derived metric for one reading, or ``None`` when its inputs are missing or unusable."""
    try:
        return _derive(metric, values, device, at)
    except ValueError as exc:
        # The standards functions refuse values they cannot rate; that decides nothing for this reading.
        log.debug("cannot derive %s for %s: %s", metric, device.id, exc)
        return None


def _derive(metric: str, values: Mapping[str, float | int | bool], device: Device, at: datetime) -> Derived | None:
    if metric not in DERIVED:
        raw = values.get(metric)
        return None if raw is None else Derived(float(raw))
    inputs = _numbers(values, DERIVED[metric])
    if metric == "occupancy":
        total, occupied = inputs.get("total_spots"), inputs.get("occupied_spots")
        return None if not total or occupied is None else Derived(occupied / total)
    if metric == "sorting_rate":
        inspected, correct = inputs.get("inspected"), inputs.get("correct")
        return None if not inspected or correct is None else Derived(correct / inspected)
    if metric == "tilt_ratio":
        if "tilt_x" not in inputs or "tilt_y" not in inputs:
            return None
        from gulou.rules.standards import tilt_ratio

        # The lean is measured from the inclinometer's reading at installation (registry), else from zero.
        x0, y0 = device.tilt_baseline or (0.0, 0.0)
        return Derived(float(tilt_ratio(inputs["tilt_x"] - x0, inputs["tilt_y"] - y0)))
    if not inputs:
        return None
    if metric in HOURLY:
        return None  # rated from the hour's means (gulou.rules.hourly), never from a single reading
    if metric == "water_class":
        from gulou.rules.standards import water_class

        target = site_target_class(device)
        # Lakes and reservoirs (registry ``water_body``) take GB 3838's lake columns for TP.
        wc = water_class(inputs, target=target, water_body=device.site.water_body)
        # The standard's 超标倍数 is per indicator; the alert carries the worst one.
        worst = max((v for v in wc.exceedance.values() if v is not None), default=None)
        return Derived(float(WATER_CLASS_ORDINAL[wc.klass]), label=wc.klass, exceedance=worst)
    from gulou.rules.standards import black_odour

    bo = black_odour(inputs)
    level = BLACK_ODOUR_LEVEL[bo.level]
    return Derived(float(level), label=BLACK_ODOUR_LABEL[level])
