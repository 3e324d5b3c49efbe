"""Rule schema (pydantic) and the YAML loader whose errors name the file, the rule id and the field."""

from __future__ import annotations

import string
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from gulou.devices.base import Domain
from gulou.devices.catalog import CATALOG
from gulou.devices.registry import Device
from gulou.rules.standards.aqi import MEASURED
from gulou.rules.standards.water import CLASS_ORDER
from gulou.timeutil import CHINA_TZ

# Days, daily ratios and "the standard in force on the observation date" follow Beijing time.
Severity = Literal["informational", "low", "medium", "high", "critical"]
SEVERITIES: tuple[str, ...] = get_args(Severity)
Op = Literal[">", ">=", "<", "<=", "==", "!="]
# Derived metrics and the raw metrics each is computed from. The standards tables load lazily, so the water
# inputs are named here; tests/unit/rules/test_standards_rule_files.py ties them to gb3838 and black_odour.
DERIVED: dict[str, tuple[str, ...]] = {
    "aqi": MEASURED,
    "water_class": ("ph", "do", "codmn", "nh3n", "tp"),
    "black_odour_level": ("transparency", "do", "orp", "nh3n"),
    "tilt_ratio": ("tilt_x", "tilt_y"),
    "occupancy": ("occupied_spots", "total_spots"),
    "sorting_rate": ("correct", "inspected"),
}
# Derived metrics rated from a station's clock-hour means (HJ 633 hourly values), not from one reading: rules on
# them are judged once per closed hour, at the hour's start (gulou.rules.hourly).
HOURLY: frozenset[str] = frozenset({"aqi"})
WATER_CLASS_ORDINAL: dict[str, int] = {klass: n for n, klass in enumerate(CLASS_ORDER, start=1)}
TEMPLATE_FIELDS = frozenset({
    "rule", "device", "device_name", "site", "site_name", "street", "domain", "metric", "value", "limit",
    "value_label", "limit_label", "exceedance", "exceedance_pct", "severity",
})


class RuleError(ValueError):
    """A rule file that does not validate; the message names the file, the rule id and the field."""


def compare(op: str, value: float, limit: float) -> bool:
    """Apply a comparison operator."""
    if op == ">":
        return value > limit
    if op == ">=":
        return value >= limit
    if op == "<":
        return value < limit
    if op == "<=":
        return value <= limit
    if op == "==":
        return value == limit
    return value != limit


def negate(op: str) -> str:
    """The operator that holds exactly when ``op`` does not."""
    return {">": "<=", ">=": "<", "<": ">=", "<=": ">", "==": "!=", "!=": "=="}[op]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatedValue(_Model):
    """A limit value in force from a date on (observation date, Beijing time)."""

    since: date | None = None
    value: float


class Limit(_Model):
    """A limit: a number, a number that depends on the observation date, or one taken from the site."""

    value: float | None = None
    by_date: list[DatedValue] | None = None
    site: Literal["target_class", "tilt_limit", "crack_limit"] | None = None
    factor: float = Field(default=1.0, gt=0)
    overrides: dict[str, float] = Field(default_factory=dict, description="per-site limit by site id")

    @model_validator(mode="before")
    @classmethod
    def _scalar(cls, data: Any) -> Any:
        if isinstance(data, int | float) and not isinstance(data, bool):
            return {"value": data}
        return data

    @model_validator(mode="after")
    def _one_source(self) -> Limit:
        given = [n for n in ("value", "by_date", "site") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of value, by_date, site")
        if self.by_date is not None:
            if not self.by_date:
                raise ValueError("by_date needs at least one entry")
            dates = [d.since or date.min for d in self.by_date]
            if dates != sorted(dates):
                raise ValueError("by_date entries must be in ascending 'since' order")
        return self

    def resolve(self, device: Device, at: datetime) -> float:
        """The limit that applies to this device at this event time."""
        if device.site.id in self.overrides:
            return self.overrides[device.site.id]
        if self.value is not None:
            return self.value * self.factor
        if self.by_date is not None:
            day = at.astimezone(CHINA_TZ).date()
            chosen = self.by_date[0].value
            for entry in self.by_date:
                if entry.since is None or entry.since <= day:
                    chosen = entry.value
            return chosen * self.factor
        if self.site == "target_class":
            return float(WATER_CLASS_ORDINAL[site_target_class(device)]) * self.factor
        if self.site == "crack_limit":
            from gulou.rules.standards.structure import crack_limit

            # A building without a recorded structure type is judged as masonry, the district's usual old house.
            return float(crack_limit(device.site.structure_type or "masonry").value) * self.factor
        from gulou.rules.standards import tilt_limit

        return float(tilt_limit(device.site.storeys or 1)) * self.factor


def site_target_class(device: Device) -> str:
    """The section's target class; default III for drinking-water sources, IV for inner rivers."""
    if device.site.target_class:
        return device.site.target_class
    return "III" if device.site.drinking_source else "IV"


class Condition(_Model):
    """An operator and a limit (the clear side of a hysteresis pair)."""

    op: Op
    limit: Limit


class Selector(_Model):
    """Narrows the devices a rule applies to (all given criteria must match)."""

    devices: list[str] | None = None
    sites: list[str] | None = None
    streets: list[str] | None = None
    river: str | None = None
    category: str | None = None
    lot_type: str | None = None
    drinking_source: bool | None = None

    def matches(self, device: Device) -> bool:
        """Whether the device satisfies every given criterion."""
        site = device.site
        return not (
            (self.devices is not None and device.id not in self.devices)
            or (self.sites is not None and site.id not in self.sites)
            or (self.streets is not None and device.street not in self.streets)
            or (self.river is not None and site.river != self.river)
            or (self.category is not None and device.category != self.category)
            or (self.lot_type is not None and site.lot_type != self.lot_type)
            or (self.drinking_source is not None and site.drinking_source != self.drinking_source)
        )


class RuleBase(_Model):
    """Fields every rule has."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{1,79}$")
    domain: Domain
    device_type: str | None = None
    selector: Selector | None = None
    severity: Severity
    message: str = Field(min_length=1, description="Chinese message template")
    message_en: str = Field(min_length=1, description="English message template")
    source: str = Field(min_length=3, description="standard or plan target, with [H]/[M]/[U] where uncertain")
    enabled: bool = True
    renotify_s: float | None = Field(default=None, gt=0, description="re-notify a firing alert this often")

    @model_validator(mode="after")
    def _check_base(self) -> RuleBase:
        if self.device_type is not None:
            dtype = CATALOG.get(self.device_type)
            if dtype is None:
                raise ValueError(f"device_type: unknown device type {self.device_type!r}")
            if dtype.domain != self.domain:
                raise ValueError(f"device_type: {self.device_type} belongs to {dtype.domain}, not {self.domain}")
        for name in ("message", "message_en"):
            for _, field, _, _ in string.Formatter().parse(getattr(self, name)):
                if field is not None and field.split(".")[0].split("[")[0] not in TEMPLATE_FIELDS:
                    raise ValueError(f"{name}: unknown placeholder {{{field}}}; "
                                     f"known: {', '.join(sorted(TEMPLATE_FIELDS))}")
        return self

    def applies_to(self, device: Device) -> bool:
        """Whether the rule watches this device."""
        return (
            self.enabled and device.domain == self.domain
            and (self.device_type is None or device.type == self.device_type)
            and (self.selector is None or self.selector.matches(device))
        )

    def _check_metric(self, metric: str) -> None:
        if metric in DERIVED:
            return
        types = [CATALOG[self.device_type]] if self.device_type else [
            t for t in CATALOG.values() if t.domain == self.domain]
        if not any(metric in {m.name for m in t.metrics} for t in types):
            known = sorted({m.name for t in types for m in t.metrics} | set(DERIVED))
            raise ValueError(f"metric: unknown metric {metric!r}; known: {', '.join(known)}")


class _Compared(RuleBase):
    metric: str
    op: Op
    limit: Limit
    clear: Condition | None = None

    @model_validator(mode="after")
    def _check_compared(self) -> _Compared:
        self._check_metric(self.metric)
        return self

    def clear_condition(self) -> Condition:
        """The explicit clear condition, or the negation of the firing one."""
        return self.clear or Condition(op=negate(self.op), limit=self.limit)


class ThresholdRule(_Compared):
    """Fires when a raw or derived metric crosses a limit; clears on the clear condition (hysteresis)."""

    kind: Literal["threshold"]


class HeldRule(_Compared):
    """Fires when the condition has held for a duration and/or N consecutive readings."""

    kind: Literal["held"]
    for_count: int | None = Field(default=None, ge=1)
    for_s: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _check_held(self) -> HeldRule:
        if self.for_count is None and self.for_s is None:
            raise ValueError("for_count: give for_count and/or for_s")
        return self


class WindowRule(_Compared):
    """Aggregate over a rolling event-time window (optionally of per-bucket means, e.g. hourly values)."""

    kind: Literal["window"]
    agg: Literal["mean", "max", "min", "percentile"]
    percentile: float | None = Field(default=None, ge=0, le=100)
    window_s: float = Field(gt=0)
    bucket_s: float | None = Field(default=None, gt=0)
    bucket_min_fraction: float = Field(default=0.0, ge=0, le=1,
                                       description="share of the bucket the device's readings must cover")
    min_count: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _check_window(self) -> WindowRule:
        if (self.agg == "percentile") != (self.percentile is not None):
            raise ValueError("percentile: give percentile exactly when agg is 'percentile'")
        if self.bucket_s is not None and self.window_s % self.bucket_s:
            raise ValueError("bucket_s: window_s must be a whole number of buckets")
        return self


class RateRule(_Compared):
    """Rate of change per time unit between the oldest and newest reading inside a window.

    With ``bucket_s`` the window keeps per-bucket means (daily means of a slow gauge) and the rate is their
    least-squares slope, so a month of readings is a few dozen numbers and one noisy reading moves nothing.
    """

    kind: Literal["rate"]
    per_s: float = Field(gt=0, description="rate unit: 300 = per 5 min, 86400 = per day")
    window_s: float = Field(gt=0)
    min_span_s: float = Field(default=0, ge=0)
    absolute: bool = False
    bucket_s: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _check_rate(self) -> RateRule:
        if self.bucket_s is not None and self.window_s % self.bucket_s:
            raise ValueError("bucket_s: window_s must be a whole number of buckets")
        return self


class PointRule(_Compared):
    """A monitoring point graded over the samples of a window (black_odour_point: the guide's share rule)."""

    kind: Literal["point"]
    window_s: float = Field(gt=0)
    min_samples: int = Field(default=1, ge=1, description="samples the window needs before it is graded")

    @model_validator(mode="after")
    def _check_point(self) -> PointRule:
        if self.metric != "black_odour_level":
            raise ValueError("metric: a point rule grades black_odour_level (0 none, 1 light, 2 severe)")
        return self


TargetStatus = Literal["at_risk", "missed"]
TARGET_STATUSES: tuple[TargetStatus, ...] = get_args(TargetStatus)


class TargetRule(RuleBase):
    """The plan's targets (data/targets.yaml): fires while a target is at risk or missed, judged by the app layer.

    Each target is its own subject; the alert resolves when the target is back on track.
    """

    kind: Literal["target"]
    targets: list[str] = Field(min_length=1, description="target ids of targets.yaml")
    on: list[TargetStatus] = Field(default_factory=lambda: list(TARGET_STATUSES), min_length=1)

    def applies_to(self, device: Device) -> bool:
        """Never a device: targets are judged from the reports' year-to-date figures."""
        return False


class AbsenceRule(RuleBase):
    """No data for k x the device's reporting interval, or an 'offline' status message."""

    kind: Literal["absence"]
    k: float = Field(default=3, gt=0)
    on_status: bool = True


class RatioRule(RuleBase):
    """Σnumerator / Σdenominator over a calendar period per device or site, compared at period close."""

    kind: Literal["ratio"]
    numerator: str
    denominator: str
    period: Literal["hour", "day"] = "day"
    group_by: Literal["device", "site"] = "site"
    op: Op
    limit: Limit
    min_denominator: float = Field(default=1, gt=0)

    @model_validator(mode="after")
    def _check_ratio(self) -> RatioRule:
        self._check_metric(self.numerator)
        self._check_metric(self.denominator)
        return self


Rule = Annotated[
    ThresholdRule | HeldRule | WindowRule | RateRule | AbsenceRule | RatioRule | PointRule | TargetRule,
    Field(discriminator="kind"),
]
_RULE: TypeAdapter[Any] = TypeAdapter(Rule)
AnyRule = ThresholdRule | HeldRule | WindowRule | RateRule | AbsenceRule | RatioRule | PointRule | TargetRule


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that records the line each mapping starts on."""


def _mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    data: dict[str, Any] = {str(k): v for k, v in loader.construct_mapping(node, deep=True).items()}
    data["__line__"] = node.start_mark.line + 1
    return data


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _strip(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _strip(v) for k, v in data.items() if k != "__line__"}
    if isinstance(data, list):
        return [_strip(v) for v in data]
    return data


def parse_rules(text: str, source: str) -> list[AnyRule]:
    """Validate the text of one rule file."""
    try:
        doc = yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as exc:
        raise RuleError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list):
        raise RuleError(f"{source}: expected a mapping with a 'rules' list")
    extra = sorted(k for k in doc if k not in ("rules", "__line__"))
    if extra:
        raise RuleError(f"{source}: unknown top-level key(s) {', '.join(extra)}; only 'rules' is allowed")
    out: list[AnyRule] = []
    for raw in doc["rules"]:
        if not isinstance(raw, dict):
            raise RuleError(f"{source}: every rule must be a mapping, got {raw!r}")
        line, ident = raw.get("__line__", 0), raw.get("id", "?")
        try:
            out.append(_RULE.validate_python(_strip(raw)))
        except ValidationError as exc:
            problems = "; ".join(_describe(err) for err in exc.errors())
            raise RuleError(f"{source}:{line}: rule {ident!r}: {problems}") from None
    return out


def _describe(err: Any) -> str:
    # The discriminator puts the kind name first in loc; the field is what a reader needs.
    loc = [str(p) for p in err["loc"] if str(p) not in
           ("threshold", "held", "window", "rate", "absence", "ratio", "point", "target")]
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{'.'.join(loc)}: {msg}" if loc else msg


def default_rule_files() -> list[Path]:
    """The rule files shipped with the package, in name order."""
    folder = Path(str(resources.files("gulou.data").joinpath("rules")))
    return sorted(folder.glob("*.yaml"))


def load_rules(paths: Sequence[Path | str] | None = None) -> list[AnyRule]:
    """Load and validate rule files (the shipped set by default); ids must be unique across files."""
    files = [Path(p) for p in paths] if paths else default_rule_files()
    seen: dict[str, str] = {}
    rules: list[AnyRule] = []
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise RuleError(f"{file}: cannot read rule file: {exc.strerror}") from None
        for rule in parse_rules(text, str(file)):
            if rule.id in seen:
                raise RuleError(f"{file}: rule {rule.id!r}: id: duplicate, already defined in {seen[rule.id]}")
            seen[rule.id] = str(file)
            rules.append(rule)
    return rules


def rule_limit_text(rule: AnyRule) -> str:
    """Human-readable limit of a rule, for listings and docs."""
    if isinstance(rule, AbsenceRule):
        return f"no data for {rule.k:g} x interval"
    if isinstance(rule, TargetRule):
        return " / ".join(rule.on)
    op = rule.op
    lim = rule.limit
    if lim.value is not None:
        text = f"{lim.value * lim.factor:g}"
    elif lim.by_date is not None:
        text = " / ".join(f"{d.value:g}" + (f" from {d.since}" if d.since else "") for d in lim.by_date)
    else:
        text = f"{lim.factor:g} x {lim.site}" if lim.factor != 1 else f"{lim.site}"
    return f"{op} {text}"


def summarise(rules: Iterable[AnyRule]) -> list[dict[str, Any]]:
    """Plain rows for ``gulou rules list``."""
    rows = []
    for r in rules:
        metric = getattr(r, "metric", None) or (
            f"{r.numerator}/{r.denominator}" if isinstance(r, RatioRule)
            else ",".join(r.targets) if isinstance(r, TargetRule) else "-")
        rows.append({"id": r.id, "kind": r.kind, "domain": r.domain, "device_type": r.device_type,
                     "severity": r.severity, "metric": metric, "limit": rule_limit_text(r), "source": r.source,
                     "enabled": r.enabled})
    return rows
