"""Black-odorous urban water level per sample and per monitoring point (城市黑臭水体整治工作指南, 2015)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Literal

from pydantic import BaseModel, ConfigDict

from gulou.rules.standards.tables import OdourIndicator, black_odour_table, check_number, exact

log = logging.getLogger(__name__)

Level = Literal["none", "light", "severe"]
LEVELS: tuple[Level, ...] = ("none", "light", "severe")
LEVEL_WORDS: dict[str, str] = {"none": "无黑臭", "light": "轻度黑臭", "severe": "重度黑臭"}


class BlackOdourResult(BaseModel):
    """Level of one sample (the worst indicator) and the level of each indicator given."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    level: Level
    indicators: dict[str, Level]
    transparency_bounds_cm: tuple[float, float] | None
    unrated: list[str]


class BlackOdourPointResult(BaseModel):
    """Level of a monitoring point over several samples, with each indicator's share of severe samples."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    level: Level
    severe_share: dict[str, float]
    samples: int


def _bounds(name: str, item: OdourIndicator, depth_cm: Fraction | None) -> tuple[Fraction, Fraction]:
    light, severe = exact(item.light_from), exact(item.severe_from)
    shallow = black_odour_table().shallow_water
    if name == "transparency" and depth_cm is not None and depth_cm < exact(shallow.depth_below_cm):
        # Both transparency bounds carry the table's (*) note: in shallow water each is 40 % of the depth.
        bound = exact(shallow.fraction) * depth_cm
        light, severe = min(light, bound), min(severe, bound)
    return light, severe


def _level(item: OdourIndicator, value: Fraction, light: Fraction, severe: Fraction) -> Level:
    if item.direction == "below":
        return "severe" if value < severe else "light" if value < light else "none"
    return "severe" if value > severe else "light" if value > light else "none"


def black_odour(values: Mapping[str, float], depth_cm: float | None = None) -> BlackOdourResult:
    """Black-odour level of one sample (transparency cm, do mg/L, orp mV, nh3n mg/L); depth for shallow water."""
    table = black_odour_table()
    depth = None if depth_cm is None else exact(check_number("depth_cm", depth_cm))
    if depth is not None and depth == 0:
        raise ValueError("depth_cm must be positive")
    levels: dict[str, Level] = {}
    unrated: list[str] = []
    t_bounds: tuple[float, float] | None = None
    for name, value in values.items():
        item = table.indicators.get(name)
        if item is None:
            if name in table.unrated_metrics:
                unrated.append(name)
                continue
            known = [*table.indicators, *table.unrated_metrics]
            raise ValueError(f"unknown black-odour metric {name!r}; valid names: {', '.join(known)}")
        number = exact(check_number(name, value, allow_negative=name == "orp"))
        light, severe = _bounds(name, item, depth)
        if name == "transparency":
            t_bounds = (float(light), float(severe))
        levels[name] = _level(item, number, light, severe)
    if not levels:
        raise ValueError(f"no black-odour indicator given; rated names: {', '.join(table.indicators)}")
    worst = max(levels.values(), key=LEVELS.index)
    return BlackOdourResult(level=worst, indicators=levels, transparency_bounds_cm=t_bounds, unrated=unrated)


def black_odour_point(samples: Sequence[BlackOdourResult | Mapping[str, float]],
                      depth_cm: float | None = None) -> BlackOdourPointResult:
    """Level of a point: severe by the share of severe samples per indicator, else light if any sample is."""
    if not samples:
        raise ValueError("black_odour_point needs at least one sample")
    rule = black_odour_table().aggregation
    results = [s if isinstance(s, BlackOdourResult) else black_odour(s, depth_cm) for s in samples]
    measured: dict[str, int] = {}
    severe: dict[str, int] = {}
    for result in results:
        for name, sample_level in result.indicators.items():
            measured[name] = measured.get(name, 0) + 1
            severe[name] = severe.get(name, 0) + (sample_level == "severe")
    # Shares are compared as exact fractions so that, e.g., 3 of 5 samples is exactly the 60 % threshold.
    shares = {name: Fraction(severe[name], measured[name]) for name in measured}
    single = any(s >= exact(rule.single) for s in shares.values())
    several = sum(s >= exact(rule.several) for s in shares.values()) >= rule.indicators
    level: Level
    if single or several:
        level = "severe"
    elif any(r.level != "none" for r in results):
        level = "light"
    else:
        level = "none"
    return BlackOdourPointResult(level=level, severe_share={k: float(v) for k, v in shares.items()},
                                 samples=len(results))
