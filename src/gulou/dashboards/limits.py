"""What the dashboards draw, read from the one home of each fact: standards tables, rule files, the catalog.

Nothing here holds a limit of its own. Every function reads the standards data (``gulou.rules.standards``),
the shipped rule files or the device catalog when a dashboard is built, so a changed table changes the
generated JSON (and the staleness test then asks for ``gulou dashboards generate``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.models import dashboard as model

from gulou.dashboards.common import range_mappings, steps
from gulou.devices.catalog import CATALOG
from gulou.rules.model import AnyRule, load_rules
from gulou.rules.standards.aqi import MEASURED
from gulou.rules.standards.tables import black_odour_table, gb3095, gb3838, hj633, structure_table

# Display names of the air pollutants and water indicators (presentation only).
AIR_NAMES: dict[str, str] = {"pm25": "PM2.5", "pm10": "PM10", "so2": "SO₂", "no2": "NO₂", "o3": "O₃", "co": "CO"}
WATER_NAMES: dict[str, str] = {"do": "溶解氧 DO", "nh3n": "氨氮 NH3-N", "codmn": "高锰酸盐指数 CODMn",
                               "tp": "总磷 TP", "transparency": "透明度 Transparency"}
# Colour of each water class, best to worst (presentation only; the class names come from GB 3838's table).
WATER_CLASS_PALETTE: tuple[str, ...] = ("#1F60C4", "#5794F2", "#73BF69", "#FADE2A", "#FF9830", "#F2495C")

# Grafana's unit ids for the catalog's units (presentation: the units themselves live on the metrics).
GRAFANA_UNITS: dict[str, str] = {
    "µg/m³": "conµgm3", "mg/m³": "conmgm3", "mg/L": "conmgL", "cm": "lengthcm", "mm": "lengthmm",
    "mm/s": "velocitymms", "°C": "celsius", "%RH": "humidity", "1": "percentunit", "kg": "masskg",
    "count": "short", "bool": "bool", "mV": "mvolt", "°": "degree",
}
# The standard a unit is written in when a label needs it (CO is the one air pollutant in mg/m³).
AIR_UNIT = "µg/m³"


@dataclass(frozen=True)
class LimitLine:
    """One labelled limit line: the value and the legend text naming its standard."""

    value: float
    label: str
    standard: str = ""


def percent(fraction: float) -> str:
    """A fraction as the dashboards write it: 0.8 → "80 %"."""
    return f"{round(fraction * 100, 6):g} %"


def unit_of(device_type: str, metric: str) -> str:
    """The catalog's unit of a metric."""
    return CATALOG[device_type].metric(metric).unit


def grafana_unit(device_type: str, metric: str) -> str:
    """Grafana's unit id for a catalog metric ("short" when Grafana has no matching unit)."""
    return GRAFANA_UNITS.get(unit_of(device_type, metric), "short")


# ---- air (GB 3095, HJ 633) ------------------------------------------------------------------------------------


def air_pollutants() -> tuple[str, ...]:
    """The measured AQI pollutants in reporting order."""
    return MEASURED


def air_period(pollutant: str) -> str:
    """The averaging period drawn on hourly panels: the 1 h limit where the standard has one, else 24 h."""
    periods = gb3095().limits(gb3095().rule_sets[0].limits)[pollutant]
    return "1h" if "1h" in periods else "24h"


def _period_text(period: str) -> str:
    return period[:-1] + " " + period[-1]  # "24h" → "24 h"


def air_limit_values(pollutant: str, period: str) -> list[tuple[str, float]]:
    """(limit set, value) for each value a rule set introduces, oldest first; a repeated value is drawn once."""
    out: list[tuple[str, float]] = []
    for rule_set in gb3095().rule_sets:
        value = gb3095().limits(rule_set.limits)[pollutant][period].value
        if value not in [v for _, v in out]:
            out.append((rule_set.limits, value))
    return out


def air_limit_lines(pollutant: str) -> list[LimitLine]:
    """The GB 3095 class II limit lines of one pollutant, labelled with the edition that set each value."""
    period = air_period(pollutant)
    unit = unit_of("air_station", pollutant)
    suffix = "" if unit == AIR_UNIT else f" {unit}"
    values = air_limit_values(pollutant, period)
    if len(values) == 1:
        return [LimitLine(values[0][1], f"GB 3095 {_period_text(period)} {values[0][1]:g}{suffix}", "GB 3095")]
    lines: list[LimitLine] = []
    editions: list[str] = []
    for set_name, value in values:
        # "GB 3095-2026 transition" is labelled by its edition; a later set of the same edition by its full name.
        edition = " ".join(set_name.split()[:2])
        name = edition if edition not in editions else set_name
        editions.append(edition)
        lines.append(LimitLine(value, f"{name} {_period_text(period)} {value:g}{suffix}", name))
    return lines


def good_day_max_aqi() -> int:
    """The highest AQI of a good day (优良天)."""
    return int(gb3095().validity["good_day_max_aqi"].value)


def good_day_target() -> tuple[float, int]:
    """The plan's good-day ratio target and its year: the latest year of data/targets.yaml (the reports' file)."""
    from gulou.reports.targets import load_targets

    target = next(t for t in load_targets().targets if t.id == "good_day_ratio")
    year = max(target.years)
    return target.years[year].value, year


def aqi_bands() -> list[tuple[int, int | None, str, str]]:
    """(first AQI, last AQI or None, category word, colour) of every HJ 633 category."""
    bands: list[tuple[int, int | None, str, str]] = []
    low = 0
    for category in hj633().categories:
        bands.append((low, category.max_aqi, category.category, category.colour))
        if category.max_aqi is not None:
            low = category.max_aqi + 1
    return bands


# ---- water (GB 3838, black-odour guide) ------------------------------------------------------------------------


def water_classes() -> tuple[str, ...]:
    """GB 3838's classes, best first, followed by the class worse than V."""
    return (*gb3838().classes, gb3838().worse_than_v)


def water_class_colours() -> dict[str, str]:
    """Colour of each class label."""
    return dict(zip(water_classes(), WATER_CLASS_PALETTE, strict=True))


def water_limits(metric: str) -> tuple[float, ...]:
    """GB 3838-2002 Table 1 limits of one indicator for classes I..V (rivers)."""
    limits = gb3838().indicators[metric].limits
    assert limits is not None  # every upper/lower indicator has limits (the data model checks it)
    return tuple(limits)


def gb3838_rated() -> set[str]:
    """Indicators with class limits in GB 3838 Table 1 (the others are drawn against the black-odour bands)."""
    return {name for name, item in gb3838().indicators.items() if item.limits is not None}


def water_is_lower_bound(metric: str) -> bool:
    """Whether higher is better (dissolved oxygen)."""
    return gb3838().indicators[metric].kind == "lower"


def black_odour(metric: str) -> tuple[float, float, bool]:
    """(light bound, severe bound, higher-is-worse) of one black-odour indicator."""
    item = black_odour_table().indicators[metric]
    return item.light_from, item.severe_from, item.direction == "above"


def black_odour_unit(metric: str) -> str:
    """The unit the black-odour table gives for an indicator."""
    return black_odour_table().indicators[metric].unit


def water_thresholds(metric: str) -> dash.ThresholdsConfig:
    """Colour steps by GB 3838 class for one indicator (DO reversed: higher is better)."""
    limits = water_limits(metric)
    colours = list(water_class_colours().values())
    if water_is_lower_bound(metric):
        # Below V's limit is 劣V; each limit up to I's improves the class.
        return steps(colours[5], *((limit, colours[4 - i]) for i, limit in enumerate(reversed(limits))))
    # Grafana's step applies from its value upward, so each class starts just above the previous limit.
    return steps(colours[0], *((limit + 1e-9, colours[i + 1]) for i, limit in enumerate(limits)))


def water_class_mappings(metric: str) -> list[model.ValueMapping]:
    """Value → class label mappings for one indicator (for state timelines)."""
    limits = water_limits(metric)
    classes = list(water_classes())
    colours = water_class_colours()
    if water_is_lower_bound(metric):
        edges: list[float | None] = [None, *reversed(limits), None]
        labels = list(reversed(classes))
    else:
        edges = [None, *limits, None]
        labels = classes
    bands = [(low, high, f"{label} 类", colours[label])
             for low, high, label in zip(edges[:-1], edges[1:], labels, strict=True)]
    return range_mappings(bands)


def black_odour_mappings(metric: str) -> list[model.ValueMapping]:
    """Value → none/light/severe mappings for one black-odour indicator."""
    light, severe, rising = black_odour(metric)
    if rising:
        bands: list[tuple[float | None, float | None, str, str]] = [
            (None, light, "无 none", "green"), (light, severe, "轻度 light", "orange"),
            (severe, None, "重度 severe", "red")]
    else:
        bands = [(light, None, "无 none", "green"), (severe, light, "轻度 light", "orange"),
                 (None, severe, "重度 severe", "red")]
    return range_mappings(bands)


# ---- housing safety (JGJ 125 and practice) ---------------------------------------------------------------------


def tier_fractions() -> tuple[float, float, float]:
    """Yellow, orange and red as fractions of the control value."""
    tiers = structure_table().tiers
    return tiers["yellow"].value, tiers["orange"].value, tiers["red"].value


def tier_percent_text() -> str:
    """The tiers as "70/85/100" for panel descriptions."""
    return "/".join(f"{round(f * 100, 6):g}" for f in tier_fractions())


def tier_thresholds(limit: float) -> dash.ThresholdsConfig:
    """Yellow/orange/red steps at the tier fractions of a control value."""
    yellow, orange, red = (round(limit * f, 4) for f in tier_fractions())
    return steps("green", (yellow, "yellow"), (orange, "orange"), (red, "red"))


def strictest_tilt() -> tuple[int, float]:
    """(lowest storey count it applies from, limit) of the strictest overall tilt limit."""
    entry = min(structure_table().tilt_limits, key=lambda t: t.value)
    return entry.min_storeys, entry.value


def structure_limit(key: str) -> LimitLine:
    """The control value a housing-safety panel draws: tilt (%), crack_width, settlement_rate, vibration."""
    if key == "tilt":
        storeys, ratio = strictest_tilt()
        percent = ratio * 100
        return LimitLine(percent, f"JGJ 125 {storeys}+ storeys {percent:g} %")
    if key == "crack_width":
        crack = structure_table().crack_limits["masonry"].value
        return LimitLine(crack, f"masonry crack {crack:.1f} mm")
    components = structure_table().component_limits
    if key == "settlement_rate":
        rate = components["settlement_mm_per_day"].value
        return LimitLine(rate, f"{rate:g} mm/day")
    if key == "vibration":
        ppv = components["vibration_ppv_mm_s"].value
        return LimitLine(ppv, f"GB 50868 old houses {ppv:g} mm/s")
    raise KeyError(f"no housing-safety limit {key!r}")


def tilt_limits_text() -> str:
    """The storey-dependent tilt limits as "2 % for 3+ storeys and 3 % for 1–2 storeys"."""
    limits = structure_table().tilt_limits
    parts = []
    for index, entry in enumerate(limits):
        upper = limits[index + 1].min_storeys - 1 if index + 1 < len(limits) else None
        storeys = f"{entry.min_storeys}+" if upper is None else f"{entry.min_storeys}–{upper}"
        parts.append(f"{entry.value * 100:g} % for {storeys} storeys")
    return " and ".join(reversed(parts))


# ---- rule limits (the shipped rule files) ----------------------------------------------------------------------


@functools.cache
def _shipped_rules() -> dict[str, AnyRule]:
    return {rule.id: rule for rule in load_rules()}


def rule_limit(rule_id: str) -> float:
    """The fixed limit of a shipped rule (the dashboards colour at the values the rules engine alerts at)."""
    rule = _shipped_rules()[rule_id]
    limit = getattr(rule, "limit", None)
    if limit is None or limit.value is None:
        raise ValueError(f"rule {rule_id!r} has no fixed limit to draw")
    return float(limit.value * limit.factor)
