"""Schemas of the standards data files (pydantic, extra fields forbidden, every figure with its source)."""

from __future__ import annotations

import itertools
import re
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

CONFIDENCE = re.compile(r"\[(H|M|U)\]")
WATER_CLASSES: tuple[str, ...] = ("I", "II", "III", "IV", "V")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_source(text: str) -> str:
    if not CONFIDENCE.search(text):
        raise ValueError(f"source {text!r} has no confidence mark [H], [M] or [U]")
    return text


class Sourced(_Model):
    """One number with the standard, table and confidence mark it comes from."""

    value: float
    source: str
    unit: str | None = None

    _source = field_validator("source")(_check_source)

    @property
    def confidence(self) -> str:
        """The first confidence mark in the source text: H, M or U."""
        match = CONFIDENCE.search(self.source)
        assert match is not None
        return match.group(1)


# ---- HJ 633 ---------------------------------------------------------------------------------------------


class SourcedInts(_Model):
    """A list of integers with its source."""

    values: list[int]
    source: str

    _source = field_validator("source")(_check_source)


class SourcedText(_Model):
    """A setting word with its source."""

    mode: Literal["ceiling"]
    source: str

    _source = field_validator("source")(_check_source)


class Category(_Model):
    """One AQI band."""

    max_aqi: int | None
    level: str
    category: str
    category_en: str
    colour: str = Field(pattern=r"^#[0-9A-F]{6}$")
    source: str

    _source = field_validator("source")(_check_source)


class PrimaryRule(_Model):
    """AQI above which the primary pollutant is reported."""

    above_aqi: int
    source: str

    _source = field_validator("source")(_check_source)


class Column(_Model):
    """One IAQI breakpoint column."""

    unit: str
    breakpoints: list[float] = Field(min_length=2)
    above_top: str | None = None
    source: str

    _source = field_validator("source")(_check_source)

    @field_validator("breakpoints")
    @classmethod
    def _ascending(cls, value: list[float]) -> list[float]:
        if any(b <= a for a, b in itertools.pairwise(value)):
            raise ValueError("breakpoints must be strictly ascending")
        return value


class Method(_Model):
    """One edition of HJ 633: its columns and whether it reports exceeding pollutants."""

    exceeding_pollutants: bool
    exceeding_above_iaqi: int | None
    exceeding_source: str
    columns: dict[str, Column]

    _source = field_validator("exceeding_source")(_check_source)


class Hj633(_Model):
    """hj633.yaml."""

    iaqi_levels: SourcedInts
    rounding: SourcedText
    cap: Sourced
    categories: list[Category] = Field(min_length=1)
    primary_pollutant: PrimaryRule
    methods: dict[str, Method]

    @model_validator(mode="after")
    def _consistent(self) -> Hj633:
        levels = len(self.iaqi_levels.values)
        for name, method in self.methods.items():
            for key, col in method.columns.items():
                if len(col.breakpoints) > levels:
                    raise ValueError(f"methods.{name}.columns.{key}: more breakpoints than IAQI levels")
                if len(col.breakpoints) < levels and (col.above_top is None or col.above_top not in method.columns):
                    raise ValueError(f"methods.{name}.columns.{key}: a short column needs above_top naming a column")
        if self.categories[-1].max_aqi is not None:
            raise ValueError("categories: the last band must have max_aqi null")
        return self


# ---- GB 3095 --------------------------------------------------------------------------------------------


class RuleSet(_Model):
    """Which AQI method and limit set apply from a date on."""

    id: str
    since: date | None
    method: str
    limits: str
    standard: str
    source: str

    _source = field_validator("source")(_check_source)


class Gb3095(_Model):
    """gb3095.yaml."""

    rule_sets: list[RuleSet] = Field(min_length=1)
    limit_sets: dict[str, dict[str, Any]]
    validity: dict[str, Sourced]

    @model_validator(mode="after")
    def _consistent(self) -> Gb3095:
        if self.rule_sets[0].since is not None:
            raise ValueError("rule_sets: the first entry must have since: null")
        dates = [r.since for r in self.rule_sets[1:]]
        if any(d is None for d in dates) or dates != sorted(d for d in dates if d is not None):
            raise ValueError("rule_sets: entries after the first need ascending since dates")
        for rs in self.rule_sets:
            if rs.limits not in self.limit_sets:
                raise ValueError(f"rule_sets.{rs.id}: unknown limit set {rs.limits!r}")
        for name in self.limit_sets:
            self.limits(name)  # resolves inheritance and validates every figure
        return self

    def limits(self, name: str) -> dict[str, dict[str, Sourced]]:
        """The resolved limit table of a set (an inheriting set gets its parent's figures and its [U] source)."""
        raw = dict(self.limit_sets[name])
        parent = raw.pop("inherits", None)
        source = raw.pop("source", None)
        table: dict[str, dict[str, Sourced]] = {}
        if parent is not None:
            if parent not in self.limit_sets or parent == name:
                raise ValueError(f"limit_sets.{name}: bad inherits {parent!r}")
            if source is None:
                raise ValueError(f"limit_sets.{name}: an inheriting set needs a source")
            _check_source(source)
            for pollutant, periods in self.limits(parent).items():
                table[pollutant] = {p: Sourced(value=s.value, source=f"{source} (from {s.source})")
                                    for p, s in periods.items()}
        for pollutant, periods in raw.items():
            if not isinstance(periods, dict):
                raise ValueError(f"limit_sets.{name}.{pollutant}: expected a mapping of averaging periods")
            table.setdefault(pollutant, {}).update(
                {str(p): Sourced.model_validate(v) for p, v in periods.items()})
        return table


# ---- GB 3838, black odour, structure ---------------------------------------------------------------------


class WaterIndicator(_Model):
    """One GB 3838 Table 1 item."""

    kind: Literal["upper", "lower", "range"]
    unit: str
    limits: list[float] | None = None
    lake_limits: list[float] | None = None
    low: float | None = None
    high: float | None = None
    lakes_only: bool = False
    source: str

    _source = field_validator("source")(_check_source)

    @model_validator(mode="after")
    def _shape(self) -> WaterIndicator:
        if self.kind == "range":
            if self.low is None or self.high is None:
                raise ValueError("a range item needs low and high")
        else:
            for lims in (self.limits, self.lake_limits):
                if lims is not None and len(lims) != len(WATER_CLASSES):
                    raise ValueError("limits need one value per class I..V")
            if self.limits is None:
                raise ValueError("an upper or lower item needs limits")
        return self


class StatusWords(_Model):
    """Status word per class."""

    words: dict[str, str]
    source: str

    _source = field_validator("source")(_check_source)


class Gb3838(_Model):
    """gb3838.yaml."""

    standard: str
    classes: list[str]
    worse_than_v: str
    worse_than_v_source: str
    indicators: dict[str, WaterIndicator]
    status: StatusWords
    exceedance_default_target: str
    exceedance_source: str
    unrated_metrics: list[str]

    @model_validator(mode="after")
    def _consistent(self) -> Gb3838:
        if tuple(self.classes) != WATER_CLASSES:
            raise ValueError(f"classes must be {list(WATER_CLASSES)}")
        if self.worse_than_v != "劣V":
            raise ValueError("worse_than_v must be 劣V (the class name the rest of the project uses)")
        if set(self.status.words) != {*WATER_CLASSES, self.worse_than_v}:
            raise ValueError("status.words needs one word per class and for the class worse than V")
        _check_source(self.worse_than_v_source)
        _check_source(self.exceedance_source)
        return self


class OdourIndicator(_Model):
    """One black-odour indicator."""

    unit: str
    direction: Literal["below", "above"]
    light_from: float
    severe_from: float
    source: str

    _source = field_validator("source")(_check_source)


class ShallowWater(_Model):
    """Transparency bound for shallow water."""

    depth_below_cm: float
    fraction: float = Field(gt=0, le=1)
    source: str

    _source = field_validator("source")(_check_source)


class Aggregation(_Model):
    """Thresholds that turn per-sample levels into a point's level."""

    single: float = Field(gt=0, le=1)
    several: float = Field(gt=0, le=1)
    indicators: int = Field(ge=1)
    source: str

    _source = field_validator("source")(_check_source)


class BlackOdourTable(_Model):
    """black_odour.yaml."""

    indicators: dict[str, OdourIndicator]
    shallow_water: ShallowWater
    aggregation: Aggregation
    unrated_metrics: list[str]


class TiltLimit(_Model):
    """Tilt limit from a storey count on."""

    min_storeys: int = Field(ge=1)
    value: float = Field(gt=0)
    source: str

    _source = field_validator("source")(_check_source)


class StructureTable(_Model):
    """structure.yaml."""

    tilt_limits: list[TiltLimit] = Field(min_length=1)
    tiers: dict[Literal["yellow", "orange", "red"], Sourced]
    component_limits: dict[str, Sourced]
    # Crack-width limit per structure type (the registry's site.structure_type).
    crack_limits: dict[str, Sourced] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> StructureTable:
        if self.tilt_limits[0].min_storeys != 1:
            raise ValueError("tilt_limits must start at min_storeys 1")
        if [t.min_storeys for t in self.tilt_limits] != sorted({t.min_storeys for t in self.tilt_limits}):
            raise ValueError("tilt_limits must ascend by min_storeys")
        if set(self.tiers) != {"yellow", "orange", "red"}:
            raise ValueError("tiers needs yellow, orange and red")
        if not self.tiers["yellow"].value < self.tiers["orange"].value <= self.tiers["red"].value:
            raise ValueError("tiers must ascend yellow < orange <= red")
        return self


