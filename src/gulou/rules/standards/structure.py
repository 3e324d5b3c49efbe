"""Building safety figures: tilt ratio from two inclinometer axes, tilt limits, warning tiers and rates."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from gulou.rules.standards.tables import Sourced, check_number, exact, structure_table

log = logging.getLogger(__name__)

Tier = Literal["none", "yellow", "orange", "red"]
SECONDS_PER_DAY = 86400.0


def tilt_ratio(tilt_x_deg: float, tilt_y_deg: float) -> float:
    """Tangent of the resultant inclination of two axis tilts in degrees (a fraction; × 100 for %)."""
    tx = math.tan(math.radians(check_number("tilt_x_deg", tilt_x_deg, allow_negative=True)))
    ty = math.tan(math.radians(check_number("tilt_y_deg", tilt_y_deg, allow_negative=True)))
    # The resultant angle is atan(sqrt(tan²x + tan²y)), so its tangent is the root itself.
    return math.hypot(tx, ty)


def tilt_limit(storeys: int) -> float:
    """Overall tilt above which a building is dangerous (JGJ 125-2016): 0.03 for 1-2 storeys, 0.02 for 3+."""
    return tilt_limit_sourced(storeys).value


def tilt_limit_sourced(storeys: int) -> Sourced:
    """The tilt limit for a storey count with its source."""
    if isinstance(storeys, bool) or not isinstance(storeys, int) or storeys < 1:
        raise ValueError(f"storeys must be a positive integer, got {storeys!r}")
    chosen = structure_table().tilt_limits[0]
    for entry in structure_table().tilt_limits:
        if storeys >= entry.min_storeys:
            chosen = entry
    return Sourced(value=chosen.value, source=chosen.source)


def tier(value: float, limit: float) -> Tier:
    """Warning tier of a value against a control value: yellow/orange/red at the data file's fractions."""
    if limit <= 0:
        raise ValueError(f"limit must be positive, got {limit!r}")
    tiers = structure_table().tiers
    # Compared as exact decimals so that 0.021 against 0.03 is exactly the 70 % yellow threshold.
    share = exact(check_number("value", value)) / exact(limit)
    order: tuple[Literal["red", "orange", "yellow"], ...] = ("red", "orange", "yellow")
    for name in order:
        if share >= exact(tiers[name].value):
            return name
    return "none"


def tilt_tier(ratio: float, storeys: int) -> Tier:
    """Warning tier of a tilt ratio for a building of this many storeys."""
    return tier(ratio, tilt_limit(storeys))


def component_limit(name: str) -> Sourced:
    """A component or rate limit from the data file (masonry_tilt, settlement_mm_per_day, ...)."""
    limits = structure_table().component_limits
    if name not in limits:
        raise ValueError(f"unknown component limit {name!r}; valid names: {', '.join(limits)}")
    return limits[name]


def crack_limit(structure_type: str) -> Sourced:
    """Crack-width control value (mm) for a structure type: concrete 0.5, masonry (and brick-wood, timber) 1.0."""
    limits = structure_table().crack_limits
    if structure_type not in limits:
        raise ValueError(f"no crack limit for structure type {structure_type!r}; known: {', '.join(limits)}")
    return limits[structure_type]


def rate_per_day(samples: Sequence[tuple[datetime, float | None]]) -> float | None:
    """Least-squares slope of the values per day (crack width, settlement); None without two distinct times."""
    kept = [(ts, float(v)) for ts, v in samples if v is not None]
    if len(kept) < 2:
        return None
    # Times as days since the first sample (works for naive and aware stamps alike), then centred.
    origin = kept[0][0]
    points = [((ts - origin).total_seconds() / SECONDS_PER_DAY, v) for ts, v in kept]
    mean_t = sum(t for t, _ in points) / len(points)
    mean_v = sum(v for _, v in points) / len(points)
    sxx = sum((t - mean_t) ** 2 for t, _ in points)
    if sxx == 0:
        return None
    sxy = sum((t - mean_t) * (v - mean_v) for t, v in points)
    return sxy / sxx
