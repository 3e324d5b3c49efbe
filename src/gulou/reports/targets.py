"""The plan's targets (``data/targets.yaml``): loading with validation, and each target's status for a year."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gulou.reports.air import minimum
from gulou.reports.district import HEAVY_ABOVE_AQI
from gulou.reports.model import DayAqi, RiverOdour, SectionClass, Status, StreetSorting, TargetStatus
from gulou.rules.standards.schema import CONFIDENCE

log = logging.getLogger(__name__)


class TargetsError(ValueError):
    """The targets file is missing or does not validate (the message names the file)."""


def _sourced(text: str) -> str:
    if not CONFIDENCE.search(text):
        raise ValueError(f"source {text!r} has no confidence mark [H], [M] or [U]")
    return text


class YearValue(BaseModel):
    """A target figure for one year, with its source."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: float
    source: str

    _source = field_validator("source")(_sourced)


class Reported(BaseModel):
    """A figure the district supplies for a year (coverage, participation): value, as of when, from whom."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: float = Field(ge=0)
    as_of: date
    source: str


class Target(BaseModel):
    """One plan target with its figure per year."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    name: str
    kind: Literal["min", "max"]
    unit: Literal["ratio", "ug/m3", "days"]
    measured_by: Literal["sensors", "district"]
    basis: str
    source: str
    note: str | None
    years: dict[int, YearValue] = Field(min_length=1)
    reported: dict[int, Reported] = Field(default_factory=dict)
    baselines: dict[int, YearValue] = Field(default_factory=dict)

    _source = field_validator("source")(_sourced)

    @model_validator(mode="after")
    def _ratios_in_range(self) -> Target:
        if self.unit == "ratio" and self.id != "pm25_fall":
            for year, figure in self.years.items():
                if not 0 <= figure.value <= 1:
                    raise ValueError(f"{self.id}: year {year}: a ratio target must lie in 0..1")
        return self


class TargetsFile(BaseModel):
    """targets.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    plan: str
    targets: list[Target] = Field(min_length=1)

    @model_validator(mode="after")
    def _known_and_unique(self) -> TargetsFile:
        ids = [t.id for t in self.targets]
        if len(ids) != len(set(ids)):
            raise ValueError("target ids must be unique")
        for target in self.targets:
            if target.measured_by == "sensors" and target.id not in EVALUATORS:
                raise ValueError(f"{target.id}: no evaluator for a sensor-measured target; "
                                 f"known: {', '.join(EVALUATORS)}")
        return self


def load_targets(path: Path | None = None) -> TargetsFile:
    """Load and validate a targets file (the shipped one when no path is given)."""
    if path is None:
        return _shipped()
    return _parse(path.read_text(encoding="utf-8") if path.is_file() else None, str(path))


@functools.cache
def _shipped() -> TargetsFile:
    ref = resources.files("gulou.data").joinpath("targets.yaml")
    return _parse(ref.read_text(encoding="utf-8") if ref.is_file() else None, "gulou/data/targets.yaml")


def _parse(text: str | None, where: str) -> TargetsFile:
    if text is None:
        raise TargetsError(f"{where}: targets file missing")
    try:
        return TargetsFile.model_validate(yaml.safe_load(text))
    except yaml.YAMLError as exc:
        raise TargetsError(f"{where}: not valid YAML: {exc}") from None
    except ValidationError as exc:
        raise TargetsError(f"{where}: {exc}") from None


# ---- evaluation --------------------------------------------------------------------------------------------


@dataclass
class YearToDate:
    """What the store says about a year up to the report's data cut-off."""

    year: int
    days_elapsed: int
    days_in_year: int
    district_days: list[DayAqi]
    water: list[SectionClass]
    water_sections: dict[str, int]
    months_elapsed: int
    odour: list[RiverOdour]
    rivers_monitored: int
    sorting: StreetSorting | None
    sorting_capture: float | None
    previous_pm25: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Whether the whole year is in."""
        return self.days_elapsed >= self.days_in_year

    @property
    def remaining_days(self) -> int:
        """Days of the year not yet in."""
        return max(0, self.days_in_year - self.days_elapsed)


@dataclass(frozen=True)
class Figure:
    """A target's actual figure, projection, best reachable value and the data capture behind it."""

    actual: float | None
    projected: float | None
    best: float | None
    capture: float | None


def _air_days(ytd: YearToDate) -> tuple[list[DayAqi], float | None]:
    valid = [d for d in ytd.district_days if d.valid]
    return valid, round(len(valid) / ytd.days_elapsed, 4) if ytd.days_elapsed else None


def _good_day_ratio(ytd: YearToDate, target: float) -> Figure:
    valid, capture = _air_days(ytd)
    if not valid:
        return Figure(None, None, None, capture)
    good = sum(1 for d in valid if d.aqi is not None and d.aqi <= minimum("good_day_max_aqi"))
    rest = ytd.remaining_days
    actual = good / len(valid)
    return Figure(round(actual, 4), round(actual, 4), (good + rest) / (len(valid) + rest), capture)


def _pm25_values(ytd: YearToDate) -> list[float]:
    return [v for d in ytd.district_days if (v := d.concentrations.get("pm25")) is not None]


def _pm25_mean(ytd: YearToDate, target: float) -> Figure:
    values = _pm25_values(ytd)
    capture = round(len(values) / ytd.days_elapsed, 4) if ytd.days_elapsed else None
    if not values:
        return Figure(None, None, None, capture)
    mean = sum(values) / len(values)
    # Concentrations are never negative, so the year cannot end below the sum so far spread over every day.
    best = sum(values) / (len(values) + ytd.remaining_days)
    return Figure(round(mean, 1), round(mean, 1), best, capture)


def _pm25_fall(ytd: YearToDate, target: float) -> Figure:
    values = _pm25_values(ytd)
    capture = round(len(values) / ytd.days_elapsed, 4) if ytd.days_elapsed else None
    if not values or not ytd.previous_pm25:
        return Figure(None, None, None, capture)
    fall = (ytd.previous_pm25 - sum(values) / len(values)) / ytd.previous_pm25
    return Figure(round(fall, 4), round(fall, 4), None, capture)


def _heavy_days(ytd: YearToDate, target: float) -> Figure:
    valid, capture = _air_days(ytd)
    if not valid:
        return Figure(None, None, None, capture)
    heavy = sum(1 for d in valid if d.aqi is not None and d.aqi > HEAVY_ABOVE_AQI)
    # Days already counted stay counted: the best the year can end with is today's count.
    projected = heavy * ytd.days_in_year / len(valid)
    return Figure(float(heavy), round(projected, 1), float(heavy), capture)


def _water_share(ytd: YearToDate, which: Callable[[SectionClass], bool], group: str) -> Figure:
    judged = [s for s in ytd.water if which(s) and s.meets_target is not None]
    due = ytd.water_sections.get(group, 0) * ytd.months_elapsed
    capture = round(min(len(judged), due) / due, 4) if due else None
    if not judged:
        return Figure(None, None, None, capture)
    meeting = sum(1 for s in judged if s.meets_target)
    rest = ytd.water_sections.get(group, 0) * max(0, 12 - ytd.months_elapsed)
    actual = meeting / len(judged)
    return Figure(round(actual, 4), round(actual, 4), (meeting + rest) / (len(judged) + rest), capture)


def _drinking(ytd: YearToDate, target: float) -> Figure:
    return _water_share(ytd, lambda s: s.drinking_source, "drinking")


def _inner(ytd: YearToDate, target: float) -> Figure:
    return _water_share(ytd, lambda s: not s.drinking_source and s.water_body == "river", "inner")


def _odour_free(ytd: YearToDate, target: float) -> Figure:
    if not ytd.odour:
        return Figure(None, None, None, 0.0 if ytd.rivers_monitored else None)
    latest = max(r.period for r in ytd.odour)
    rivers = [r for r in ytd.odour if r.period == latest]
    free = sum(1 for r in rivers if r.level == "none")
    capture = round(len(rivers) / ytd.rivers_monitored, 4) if ytd.rivers_monitored else None
    actual = round(free / len(rivers), 4)
    # The status can recover until the year ends; only the last month counts then.
    return Figure(actual, actual, None if ytd.complete else 1.0, capture)


def _sorting(ytd: YearToDate, target: float) -> Figure:
    if ytd.sorting is None or ytd.sorting.rate is None:
        return Figure(None, None, None, ytd.sorting_capture)
    return Figure(ytd.sorting.rate, ytd.sorting.rate, None, ytd.sorting_capture)


EVALUATORS: dict[str, Callable[[YearToDate, float], Figure]] = {
    "good_day_ratio": _good_day_ratio,
    "pm25_annual_mean": _pm25_mean,
    "pm25_fall": _pm25_fall,
    "heavy_pollution_days": _heavy_days,
    "drinking_water_compliance": _drinking,
    "inner_river_compliance": _inner,
    "black_odour_free_rivers": _odour_free,
    "sorting_correct_rate": _sorting,
}


def status(kind: str, target: float, figure: Figure, complete: bool) -> Status:
    """on_track / at_risk / missed / no_data from the actual, the projection and the best reachable value."""
    if figure.actual is None:
        return "no_data"

    def meets(value: float) -> bool:
        return value >= target if kind == "min" else value <= target

    if complete:
        return "on_track" if meets(figure.actual) else "missed"
    if figure.best is not None and not meets(figure.best):
        return "missed"
    if figure.projected is not None and not meets(figure.projected):
        return "at_risk"
    return "on_track"


def evaluate(targets: TargetsFile, ytd: YearToDate) -> list[TargetStatus]:
    """Every target that has a figure for the year, with actual, capture, projection and status."""
    out = []
    for target in targets.targets:
        figure_for_year = target.years.get(ytd.year)
        if figure_for_year is None:
            continue
        goal = figure_for_year.value
        if target.measured_by == "district":
            reported = target.reported.get(ytd.year)
            value = None if reported is None else reported.value
            figure = Figure(value, value, None, None)
        else:
            previous = target.baselines.get(ytd.year - 1)
            if target.id == "pm25_fall" and ytd.previous_pm25 is None and previous is not None:
                ytd.previous_pm25 = previous.value
            figure = EVALUATORS[target.id](ytd, goal)
        out.append(TargetStatus(
            id=target.id, name=target.name, year=ytd.year, kind=target.kind, target=goal, unit=target.unit,
            actual=figure.actual, projected=figure.projected, capture_rate=figure.capture,
            status=status(target.kind, goal, figure, ytd.complete), basis=target.basis,
            measured_by=target.measured_by, source=figure_for_year.source, note=target.note))
    return out
