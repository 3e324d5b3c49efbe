"""Surface-water class of one sample per GB 3838-2002 Table 1, with exceedance multiples and status words."""

from __future__ import annotations

import logging
from fractions import Fraction
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict

from gulou.rules.standards.tables import WATER_CLASSES, WaterIndicator, check_number, exact, gb3838

log = logging.getLogger(__name__)

CLASS_ORDER: tuple[str, ...] = (*WATER_CLASSES, "劣V")
# GB 3838 Table 1 rates TP (and TN) of lakes and reservoirs on their own columns; the registry records
# which kind of water body each section is.
WaterBody = Literal["river", "lake"]
WATER_BODIES: tuple[str, ...] = get_args(WaterBody)


class WaterClassResult(BaseModel):
    """Class of a sample (worst indicator), per-indicator classes, exceedance over the target and status word."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    klass: str
    worst: list[str]
    per_indicator: dict[str, str]
    exceedance: dict[str, float]
    exceedance_target: str
    status: str
    target: str | None
    meets_target: bool | None
    unrated: list[str]
    standard: str


def _limits(item: WaterIndicator, lake: bool) -> list[Fraction]:
    chosen = item.lake_limits if lake and item.lake_limits is not None else item.limits
    assert chosen is not None  # the data model requires limits for upper and lower items
    return [exact(v) for v in chosen]


def _meets(item: WaterIndicator, value: Fraction, limit: Fraction) -> bool:
    return value >= limit if item.kind == "lower" else value <= limit


def _indicator_class(item: WaterIndicator, value: Fraction, lake: bool) -> str:
    if item.kind == "range":
        assert item.low is not None and item.high is not None
        # pH within 6-9 meets every class; outside it counts as worse than V.
        return WATER_CLASSES[0] if exact(item.low) <= value <= exact(item.high) else CLASS_ORDER[-1]
    for klass, limit in zip(WATER_CLASSES, _limits(item, lake), strict=True):
        if _meets(item, value, limit):
            return klass
    return CLASS_ORDER[-1]


def _exceedance(item: WaterIndicator, value: Fraction, lake: bool, target: str) -> float | None:
    if item.kind == "range":
        return None  # pH has a range, not a limit to divide by
    limit = _limits(item, lake)[WATER_CLASSES.index(target)]
    if _meets(item, value, limit) or limit == 0:
        return None
    over = (limit - value) if item.kind == "lower" else (value - limit)
    return float(over / limit)


def _check_class(name: str, klass: str | None) -> str | None:
    if klass is None:
        return None
    text = klass.strip().upper()
    if text not in WATER_CLASSES:
        raise ValueError(f"{name} must be one of {', '.join(WATER_CLASSES)}, got {klass!r}")
    return text


def is_lake(water_body: str | None, lake: bool = False) -> bool:
    """Whether a water body (``river`` or ``lake``, lakes and reservoirs alike) takes the lake columns."""
    if water_body is None:
        return lake
    if water_body not in WATER_BODIES:
        raise ValueError(f"water_body must be one of {', '.join(WATER_BODIES)}, got {water_body!r}")
    if lake and water_body != "lake":
        raise ValueError(f"lake=True contradicts water_body={water_body!r}")
    return water_body == "lake"


def water_class(values: dict[str, float], target: str | None = None, lake: bool = False,
                water_body: WaterBody | None = None) -> WaterClassResult:
    """GB 3838-2002 class of a sample (metric names ph, do, codmn, nh3n, tp, cod, bod5, tn; mg/L).

    ``water_body="lake"`` (lakes and reservoirs) or ``lake=True`` rates TP and TN on the lake columns.
    """
    lake = is_lake(water_body, lake)
    table = gb3838()
    target = _check_class("target", target)
    rated: dict[str, Fraction] = {}
    unrated: list[str] = []
    for name, value in values.items():
        if name in table.unrated_metrics:
            unrated.append(name)
            continue
        item = table.indicators.get(name)
        if item is None:
            known = [*table.indicators, *table.unrated_metrics]
            raise ValueError(f"unknown water metric {name!r}; valid names: {', '.join(known)}")
        number = exact(check_number(name, value))
        if item.lakes_only and not lake:
            unrated.append(name)  # TN does not set a river's class
            continue
        rated[name] = number
    if not rated:
        raise ValueError(f"no GB 3838 indicator given; rated names: {', '.join(table.indicators)}")
    per_indicator = {name: _indicator_class(table.indicators[name], v, lake) for name, v in rated.items()}
    klass = max(per_indicator.values(), key=CLASS_ORDER.index)
    exceedance_target = target or table.exceedance_default_target
    exceedance: dict[str, float] = {}
    for name, v in rated.items():
        multiple = _exceedance(table.indicators[name], v, lake, exceedance_target)
        if multiple is not None:
            exceedance[name] = multiple
    return WaterClassResult(
        klass=klass,
        worst=[name for name, c in per_indicator.items() if c == klass],
        per_indicator=per_indicator,
        exceedance=exceedance,
        exceedance_target=exceedance_target,
        status=table.status.words[klass],
        target=target,
        meets_target=None if target is None else CLASS_ORDER.index(klass) <= CLASS_ORDER.index(target),
        unrated=unrated,
        standard=table.standard + (" (lakes and reservoirs)" if lake else ""),
    )
