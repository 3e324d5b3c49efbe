"""Air quality index per HJ 633 (2012 or 2026 edition chosen by the observation date) and GB 3095 limits."""

from __future__ import annotations

import logging
import math
from datetime import date, datetime
from fractions import Fraction
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict

from gulou.rules.standards.tables import Column, Method, RuleSet, Sourced, check_number, exact, gb3095, hj633
from gulou.timeutil import china_date

log = logging.getLogger(__name__)

Mode = Literal["hourly", "daily"]
MODES: tuple[str, ...] = get_args(Mode)

# Reporting order of pollutants (also the order of ties in primary and exceeding pollutants).
POLLUTANTS: tuple[str, ...] = ("pm25", "pm10", "so2", "no2", "o3", "o3_8h", "co")
# The ones a station measures: the O3 8 h mean is computed from hourly O3.
MEASURED: tuple[str, ...] = tuple(p for p in POLLUTANTS if p != "o3_8h")

# Which breakpoint column rates which input. Real-time (hourly) reports use the 1 h columns of SO2, NO2,
# CO and O3; PM hourly concentrations have no 1 h column and are rated on the 24 h columns.
COLUMNS: dict[str, dict[str, str]] = {
    "hourly": {"pm25": "pm25_24h", "pm10": "pm10_24h", "so2": "so2_1h", "no2": "no2_1h", "co": "co_1h",
               "o3": "o3_1h", "o3_8h": "o3_8h"},
    "daily": {"pm25": "pm25_24h", "pm10": "pm10_24h", "so2": "so2_24h", "no2": "no2_24h", "co": "co_24h",
              "o3": "o3_1h", "o3_8h": "o3_8h"},
}
# Inputs that are never rated themselves: the SO2 24 h mean serves the hourly SO2 > 800 rule only.
FALLBACK_INPUTS: dict[str, tuple[str, ...]] = {"hourly": ("so2_24h",), "daily": ()}


class AqiResult(BaseModel):
    """AQI of one set of concentrations, with the band, the pollutants that set it and the standard used."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    aqi: int
    category: str
    category_en: str
    level: str
    colour: str
    primary_pollutants: list[str]
    iaqi: dict[str, int]
    exceeding: list[str]
    exceeding_applicable: bool
    standard: str
    rule_set: str
    mode: Mode
    date: date
    notes: list[str]


def rule_set_for(at: date | datetime) -> RuleSet:
    """The GB 3095 / HJ 633 rule set in force on the observation's China-time date."""
    day = china_date(at)
    chosen = gb3095().rule_sets[0]
    for entry in gb3095().rule_sets[1:]:
        if entry.since is not None and entry.since <= day:
            chosen = entry
    return chosen


def air_limit(pollutant: str, period: str, at: date | datetime) -> Sourced:
    """GB 3095 class II limit of a pollutant (so2, no2, co, o3, pm10, pm25) for a period (1h, 8h, 24h, annual)."""
    rule_set = rule_set_for(at)
    table = gb3095().limits(rule_set.limits)
    if pollutant not in table:
        raise ValueError(f"unknown pollutant {pollutant!r}; valid names: {', '.join(sorted(table))}")
    if period not in table[pollutant]:
        raise ValueError(f"{pollutant}: no {period!r} limit in {rule_set.limits}; "
                         f"periods: {', '.join(table[pollutant])}")
    return table[pollutant][period]


def _rate(column: Column, value: Fraction) -> int | None:
    """IAQI of a concentration on one column, rounded up; None above the top of a short column."""
    levels = hj633().iaqi_levels.values
    bps = [exact(b) for b in column.breakpoints]
    if value > bps[-1]:
        if len(bps) < len(levels):
            return None
        return int(hj633().cap.value)
    for i in range(len(bps) - 1):
        lo, hi = bps[i], bps[i + 1]
        if lo <= value <= hi:
            # Exact rational arithmetic: a concentration on a breakpoint gives exactly that breakpoint's IAQI.
            iaqi = Fraction(levels[i + 1] - levels[i]) / (hi - lo) * (value - lo) + levels[i]
            return math.ceil(iaqi)
    raise ValueError(f"concentration {float(value)} below the first breakpoint {float(bps[0])}")


def _check_inputs(values: dict[str, float], mode: str) -> dict[str, Fraction]:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    valid = (*POLLUTANTS, *FALLBACK_INPUTS[mode])
    unknown = [name for name in values if name not in valid]
    if unknown:
        raise ValueError(f"unknown pollutant {unknown[0]!r} for {mode} mode; valid names: {', '.join(valid)}")
    for name in FALLBACK_INPUTS[mode]:
        if name in values and name.split("_")[0] not in values:
            raise ValueError(f"{name} is used only with {name.split('_')[0]} (its 1 h value above the top breakpoint)")
    if not any(name in POLLUTANTS for name in values):
        raise ValueError(f"no pollutant values given; valid names: {', '.join(POLLUTANTS)}")
    return {name: exact(check_number(name, v)) for name, v in values.items()}


def _rate_all(concs: dict[str, Fraction], method: Method, mode: str, notes: list[str]) -> dict[str, int]:
    iaqi: dict[str, int] = {}
    for name in POLLUTANTS:
        if name not in concs:
            continue
        column = method.columns[COLUMNS[mode][name]]
        rated = _rate(column, concs[name])
        if rated is not None:
            iaqi[name] = rated
            continue
        top = column.breakpoints[-1]
        fallback = method.columns[str(column.above_top)]
        shown = f"{name} {float(concs[name]):g} {column.unit} > {top:g}"
        if name == "so2":
            # HJ 633 note: no IAQI from an SO2 1 h value above 800; the SO2 24 h IAQI is used instead.
            if "so2_24h" in concs:
                iaqi[name] = _rate(fallback, concs["so2_24h"]) or 0
                notes.append(f"{shown}: no IAQI from the 1 h value; the SO2 24 h IAQI is used")
            else:
                iaqi[name] = _rate(fallback, concs[name]) or 0
                notes.append(f"{shown}: no IAQI from the 1 h value and no 24 h value given; "
                             "the 1 h value is rated on the 24 h column")
        elif name == "o3_8h":
            # HJ 633 note: no IAQI from an O3 8 h value above 800; the O3 1 h IAQI is used instead.
            if "o3" in concs:
                notes.append(f"{shown}: no IAQI from the 8 h value; the O3 1 h IAQI is used")
            else:
                # The 1 h maximum is never below an 8 h mean, so rating the 8 h value on the 1 h column
                # gives a floor for the missing 1 h IAQI (capped at 500 like any value above the table).
                iaqi[name] = _rate(fallback, concs[name]) or 0
                notes.append(f"{shown}: no IAQI from the 8 h value and no 1 h value given; the 8 h value is "
                             "rated on the 1 h column (a lower bound, capped at 500)")
        else:  # pragma: no cover - the data file validator only allows short columns with above_top
            raise ValueError(f"{name}: value above the top breakpoint of {COLUMNS[mode][name]}")
    return iaqi


def aqi(values: dict[str, float], at: date | datetime, mode: Mode = "hourly") -> AqiResult:
    """AQI (HJ 633) of pollutant concentrations (µg/m³; co mg/m³) observed at a date, in hourly or daily mode."""
    concs = _check_inputs(values, mode)
    rule_set = rule_set_for(at)
    table = hj633()
    method = table.methods[rule_set.method]
    notes: list[str] = []
    iaqi = _rate_all(concs, method, mode, notes)
    index = max(iaqi.values())
    band = next(c for c in table.categories if c.max_aqi is None or index <= c.max_aqi)
    primary = ([p for p in POLLUTANTS if iaqi.get(p) == index]
               if index > table.primary_pollutant.above_aqi else [])
    exceeding: list[str] = []
    if method.exceeding_pollutants and method.exceeding_above_iaqi is not None:
        exceeding = [p for p in POLLUTANTS if p in iaqi and iaqi[p] > method.exceeding_above_iaqi]
    return AqiResult(
        aqi=index, category=band.category, category_en=band.category_en, level=band.level, colour=band.colour,
        primary_pollutants=primary, iaqi=iaqi, exceeding=exceeding,
        exceeding_applicable=method.exceeding_pollutants, standard=rule_set.standard, rule_set=rule_set.id,
        mode=mode, date=china_date(at), notes=notes,
    )


def iaqi(pollutant: str, value: float, at: date | datetime, mode: Mode = "daily") -> int:
    """Individual AQI of one pollutant concentration (same rules as :func:`aqi`)."""
    if pollutant not in POLLUTANTS:
        raise ValueError(f"unknown pollutant {pollutant!r}; valid names: {', '.join(POLLUTANTS)}")
    return aqi({pollutant: value}, at, mode).iaqi[pollutant]
