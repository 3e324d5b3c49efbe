"""Limits the dashboards draw, each with its source (figures from the project's standards reference)."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.models import dashboard as model

from gulou.dashboards.common import range_mappings, steps

# HJ 633-2026 PM2.5 breakpoints for IAQI 50/100/150/200/300 (in force from 2026-03-01).
PM25_AQI_BREAKPOINTS: tuple[float, float, float, float, float] = (35, 60, 115, 150, 250)

# Labelled limit lines per air pollutant: (value, legend label). GB 3095 class II.
AIR_LIMITS: dict[str, list[tuple[float, str]]] = {
    "pm25": [(75, "GB 3095-2012 24 h 75"), (60, "GB 3095-2026 24 h 60")],
    "pm10": [(150, "GB 3095-2012 24 h 150"), (120, "GB 3095-2026 24 h 120")],
    "so2": [(500, "GB 3095 1 h 500")],
    "no2": [(200, "GB 3095 1 h 200")],
    "o3": [(200, "GB 3095 1 h 200")],
    "co": [(10, "GB 3095 1 h 10 mg/m³")],
}
AIR_UNITS: dict[str, str] = {"pm25": "conµgm3", "pm10": "conµgm3", "so2": "conµgm3", "no2": "conµgm3",
                             "o3": "conµgm3", "co": "conmgm3"}
AIR_NAMES: dict[str, str] = {"pm25": "PM2.5", "pm10": "PM10", "so2": "SO₂", "no2": "NO₂", "o3": "O₃", "co": "CO"}

# Share of good-air days the district plans for. The plan names the indicator without a figure, so this is
# the value to set each year (docs/dashboards.md).
GOOD_DAY_TARGET = 0.95

# GB 3838-2002 Table 1 limits for classes I..V (rivers). DO is a lower bound, the others upper bounds.
WATER_LIMITS: dict[str, tuple[float, float, float, float, float]] = {
    "do": (7.5, 6, 5, 3, 2),
    "codmn": (2, 4, 6, 10, 15),
    "nh3n": (0.15, 0.5, 1.0, 1.5, 2.0),
    "tp": (0.02, 0.1, 0.2, 0.3, 0.4),
}
WATER_NAMES: dict[str, str] = {"do": "溶解氧 DO", "nh3n": "氨氮 NH3-N", "codmn": "高锰酸盐指数 CODMn",
                               "tp": "总磷 TP", "transparency": "透明度 Transparency"}
CLASSES = ("I", "II", "III", "IV", "V", "劣V")
WATER_CLASS_COLOURS: dict[str, str] = {"I": "#1F60C4", "II": "#5794F2", "III": "#73BF69", "IV": "#FADE2A",
                                       "V": "#FF9830", "劣V": "#F2495C"}

# Black-odorous water (2015 guideline, Table 1): (light bound, severe bound); lower is worse unless noted.
BLACK_ODOUR: dict[str, tuple[float, float, bool]] = {
    "transparency": (25, 10, False),
    "do": (2.0, 0.2, False),
    "orp": (50, -200, False),
    "nh3n": (8.0, 15, True),
}

# Housing safety tiers: yellow ~70 %, orange ~85 %, red ≥ 100 % of the control value (standards.md §6).
TIER_FRACTIONS = (0.70, 0.85, 1.0)
STRUCTURE_LIMITS: dict[str, tuple[float, str]] = {
    "tilt": (2.0, "JGJ 125 3+ storeys 2 %"),
    "crack_width": (1.0, "masonry crack 1.0 mm"),
    "settlement_rate": (2.0, "2 mm/day"),
    "vibration": (3.5, "GB 50868 old houses 3.5 mm/s"),
}


def water_thresholds(metric: str) -> dash.ThresholdsConfig:
    """Colour steps by GB 3838 class for one indicator (DO reversed: higher is better)."""
    limits = WATER_LIMITS[metric]
    colours = [WATER_CLASS_COLOURS[c] for c in CLASSES]
    if metric == "do":
        # Below V's 2 mg/L is 劣V; each limit up to I's 7.5 improves the class.
        return steps(colours[5], *((limit, colours[4 - i]) for i, limit in enumerate(reversed(limits))))
    # Grafana's step applies from its value upward, so each class starts just above the previous limit.
    return steps(colours[0], *((limit + 1e-9, colours[i + 1]) for i, limit in enumerate(limits)))


def water_class_mappings(metric: str) -> list[model.ValueMapping]:
    """Value → class label mappings for one indicator (for state timelines)."""
    limits = WATER_LIMITS[metric]
    bands: list[tuple[float | None, float | None, str, str]] = []
    if metric == "do":
        edges: list[float | None] = [None, *reversed(limits), None]
        labels = list(reversed(CLASSES))
    else:
        edges = [None, *limits, None]
        labels = list(CLASSES)
    for low, high, label in zip(edges[:-1], edges[1:], labels, strict=True):
        bands.append((low, high, f"{label} 类", WATER_CLASS_COLOURS[label]))
    return range_mappings(bands)


def black_odour_mappings(metric: str) -> list[model.ValueMapping]:
    """Value → none/light/severe mappings for one black-odour indicator."""
    light, severe, rising = BLACK_ODOUR[metric]
    if rising:
        bands: list[tuple[float | None, float | None, str, str]] = [
            (None, light, "无 none", "green"), (light, severe, "轻度 light", "orange"),
            (severe, None, "重度 severe", "red")]
    else:
        bands = [(light, None, "无 none", "green"), (severe, light, "轻度 light", "orange"),
                 (None, severe, "重度 severe", "red")]
    return range_mappings(bands)


def tier_thresholds(limit: float) -> dash.ThresholdsConfig:
    """Yellow/orange/red steps at 70/85/100 % of a control value."""
    yellow, orange, red = (round(limit * f, 4) for f in TIER_FRACTIONS)
    return steps("green", (yellow, "yellow"), (orange, "orange"), (red, "red"))
