"""The report as data: what ``--json`` prints and what the HTML and xlsx renderings show."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict

ReportKind = Literal["daily", "month", "year"]
Status = Literal["on_track", "at_risk", "missed", "no_data"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DayAqi(_Model):
    """The district's (or a station's) daily AQI for one day; ``valid`` false with ``reasons`` when not computed."""

    date: date
    aqi: int | None
    category: str | None
    colour: str | None
    primary_pollutants: list[str]
    valid: bool
    concentrations: dict[str, float | None]
    stations: dict[str, int]
    reasons: list[str]
    standard: str | None
    indicative: bool


class CalendarDay(_Model):
    """One cell of the AQI calendar: the district daily AQI and its band colour (grey when invalid)."""

    date: date
    aqi: int | None
    category: str | None
    colour: str


class MonthFigure(_Model):
    """One month of the year to date: good-day ratio, heavy days and the PM2.5 mean of the district."""

    month: str
    good_day_ratio: float | None
    good_days: int
    valid_days: int
    heavy_pollution_days: int
    pm25_mean: float | None
    pm25_days: int


class PeriodMean(_Model):
    """A period statistic of daily values with its validity: how many days it rests on and how many it needs."""

    value: float | None
    valid: bool
    days: int
    needed: int
    reason: str | None
    unit: str


class O3Figure(_Model):
    """O3 daily max 8 h over the period: mean and 90th percentile, with the same validity."""

    mean: float | None
    p90: float | None
    valid: bool
    days: int
    needed: int
    reason: str | None
    unit: str


class StationSummary(_Model):
    """One air station over the period: daily AQIs, good days, and whether its figures are indicative."""

    device_id: str
    name: str
    site: str
    street: str
    indicative: bool
    evaluation: bool
    valid_days: int
    good_days: int
    max_aqi: int | None
    days: list[DayAqi]


class Capture(_Model):
    """Data capture of one station: valid hours (all pollutants) and stored readings against what was due."""

    device_id: str
    name: str
    domain: str
    street: str
    indicative: bool
    expected_hours: int | None
    valid_hours: int | None
    rate: float | None
    readings: int
    expected_readings: int
    readings_rate: float | None


class SectionClass(_Model):
    """A river or lake section's GB 3838 class for one month (or day) from the mean of its samples."""

    site: str
    name: str
    river: str | None
    water_body: Literal["river", "lake"]
    drinking_source: bool
    period: str
    target: str | None
    klass: str | None
    meets_target: bool | None
    status: str | None
    worst: list[str]
    exceedance: dict[str, float]
    means: dict[str, float]
    samples: int


class ShareFigure(_Model):
    """A share of things meeting a rule: ``value`` = ``meeting`` / ``evaluated`` (None without any)."""

    value: float | None
    meeting: int
    evaluated: int


class IndicatorOver(_Model):
    """An indicator over its section's target class: in how many section-periods, the largest multiple and where."""

    indicator: str
    count: int
    max_multiple: float
    where: str
    period: str


class WaterSummary(_Model):
    """Section classes, compliance rates and the indicators most over target."""

    sections: list[SectionClass]
    periods: list[str]
    compliance: ShareFigure
    drinking_sources: ShareFigure
    inner_rivers: ShareFigure
    top_indicators: list[IndicatorOver]


class OdourSection(_Model):
    """A section's black-odour grade over its samples."""

    site: str
    name: str
    level: str
    samples: int
    severe_share: dict[str, float]


class RiverOdour(_Model):
    """A river's black-odour status: the worst of its graded sections."""

    river: str
    period: str
    level: str
    level_word: str
    sections: list[OdourSection]


class StreetSorting(_Model):
    """Waste sorting correct rate of one street (or the district) over the period."""

    street: str
    inspected: int
    correct: int
    rate: float | None
    points: int


class Warning(_Model):
    """One monitored quantity of a building at or above the yellow tier."""

    device_id: str
    metric: str
    value: float
    limit: float
    unit: str
    tier: str
    source: str


class BuildingStatus(_Model):
    """A monitored building: its worst warning tier over the period and each warning behind it."""

    site: str
    name: str
    street: str
    storeys: int | None
    structure_type: str | None
    grade: str | None
    tier: str
    warnings: list[Warning]


class TargetStatus(_Model):
    """A plan target for the year: actual to date, the data capture behind it, year-end projection, status."""

    id: str
    name: str
    year: int
    kind: Literal["min", "max"]
    target: float
    unit: str
    actual: float | None
    projected: float | None
    capture_rate: float | None
    status: Status
    basis: str
    measured_by: str
    source: str
    note: str | None


class Period(_Model):
    """The report's period: Beijing-time start (inclusive) and end (exclusive), and the data cut-off."""

    kind: ReportKind
    label: str
    start: AwareDatetime
    end: AwareDatetime
    data_until: AwareDatetime
    complete: bool


class Report(_Model):
    """A daily, monthly or yearly report of the district's figures."""

    title: str
    period: Period
    generated_at: AwareDatetime
    standard: list[str]
    indicative: bool
    district_daily_aqi: list[DayAqi]
    good_day_ratio: float | None
    good_days: int
    valid_days: int
    heavy_pollution_days: int
    pm25_mean: PeriodMean
    o3_8h: O3Figure
    stations: list[StationSummary]
    capture_rate: list[Capture]
    water: WaterSummary
    black_odour: list[RiverOdour]
    waste_sorting: list[StreetSorting]
    housing: list[BuildingStatus]
    targets: list[TargetStatus]
    calendar: list[CalendarDay]
    monthly: list[MonthFigure]

    def to_json(self) -> dict[str, object]:
        """JSON-ready dict (dates as ISO text, datetimes with their +08:00 offset)."""
        return self.model_dump(mode="json")


def monthly_label(day: date | datetime) -> str:
    """``YYYY-MM`` of a date."""
    return f"{day.year:04d}-{day.month:02d}"
