"""Every shipped rule at its edges, generated from the rule files: just below, at and just above its limit, and
the same around its clear condition, through the engine on a device the rule watches.

Values are made exact where the metric allows it: the driving input is searched float by float (or integer by
integer) until the derived metric crosses the limit, so "just above" is the first representable reading that
is above. Two more checks keep the shipped numbers honest: every rule's limits are pinned here by hand (a
changed threshold fails until its pin is changed with it, against its source), and a new rule fails until it is
pinned. Window and rate rules aggregate several readings, where floating-point sums are not exact, so their
"just" is one part in a million.
"""

from __future__ import annotations

import math
import operator
import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest

from gulou.devices.catalog import CATALOG
from gulou.devices.contract import Reading
from gulou.devices.registry import Device, load_registry
from gulou.rules.alerts import AlertTransition
from gulou.rules.derive import derive
from gulou.rules.engine import Engine
from gulou.rules.model import (
    WATER_CLASS_ORDINAL,
    AbsenceRule,
    AnyRule,
    Condition,
    HeldRule,
    Limit,
    PointRule,
    RateRule,
    RatioRule,
    TargetRule,
    ThresholdRule,
    WindowRule,
    load_rules,
    site_target_class,
)
from gulou.rules.standards import tilt_limit
from gulou.rules.targets import Status, TargetVerdict

RULES = load_rules()
REGISTRY = load_registry()
T0 = datetime(2026, 5, 1, 2, 0, tzinfo=UTC)  # 10:00 Beijing time
OPS: dict[str, Callable[[float, float], bool]] = {">": operator.gt, ">=": operator.ge, "<": operator.lt,
                                                  "<=": operator.le, "==": operator.eq, "!=": operator.ne}
NEGATION = {">": "<=", ">=": "<", "<": ">=", "<=": ">", "==": "!=", "!=": "=="}
# The raw input that moves each derived metric (the others stay at the device type's calm values).
DRIVERS = {"aqi": "pm25", "water_class": "nh3n", "black_odour_level": "do", "tilt_ratio": "tilt_x",
           "occupancy": "occupied_spots", "sorting_rate": "correct"}
RELATIVE = 1e-6  # "just" for rules that aggregate several readings

# Each shipped rule's limits, written out by hand from its source (docs/rules.md lists them with the sources).
PINNED: dict[str, str] = {
    "air-aqi-over-100": "threshold aqi > 100 | <= 90",
    "air-aqi-over-150": "threshold aqi > 150 | <= 140",
    "air-aqi-over-200": "threshold aqi > 200 | <= 190",
    "air-aqi-over-300": "threshold aqi > 300 | <= 290",
    "air-pm25-24h-class2": "window pm25 > 75 until 2026-02-28, 60 from 2026-03-01, 50 from 2031-01-01 | <= same",
    "air-o3-8h-over-160": "window o3 > 160 | <= same",
    "water-class-worse-than-target": "held water_class > site target_class | <= same",
    "water-drinking-source-worse-than-iii": "threshold water_class > 3 | <= same",
    "water-do-below-2": "threshold do < 2 | >= 2.5",
    "water-black-odour-light": "held black_odour_level >= 1 | < same",
    "water-black-odour-severe": "point black_odour_level >= 2 | < same",
    "waste-bin-dispatch": "threshold fill_level >= 0.8 | < 0.5",
    "waste-bin-overflow": "threshold fill_level >= 0.95 | < 0.8",
    "waste-bin-fire-temperature": "threshold temperature >= 60 | < 50",
    "waste-bin-fire-rise": "rate temperature >= 10 | < 2",
    "waste-bin-odour-nh3": "threshold nh3 > 1.5 | <= 1.2",
    "waste-bin-odour-h2s": "threshold h2s > 0.06 | <= 0.05",
    "waste-sorting-rate-daily": "ratio correct/inspected < 0.95",
    "parking-tight": "threshold occupancy >= 0.9 | < 0.85",
    "parking-full": "threshold occupancy >= 0.98 | < 0.95",
    "structure-tilt-yellow": "threshold tilt_ratio >= 0.7 x site tilt_limit | < 0.65 x site tilt_limit",
    "structure-tilt-orange": "threshold tilt_ratio >= 0.85 x site tilt_limit | < 0.8 x site tilt_limit",
    "structure-tilt-red": "threshold tilt_ratio >= site tilt_limit | < 0.95 x site tilt_limit",
    "structure-crack-width": "threshold crack_width > site crack_limit | <= same",
    "structure-crack-growth": "rate crack_width > 0.1 | <= 0.05",
    "structure-settlement-rate": "rate settlement > 2 | <= 1",
    "structure-settlement-monthly": "rate settlement > 4 | <= 3",
    "structure-vibration": "threshold vibration > 3.5 | <= 3",
    "device-offline-water": "absence k=3",
    "device-offline-air": "absence k=3",
    "device-offline-waste": "absence k=3",
    "device-offline-parking": "absence k=2",
    "device-offline-structure": "absence k=3",
    "plan-target-air": "target good_day_ratio,pm25_annual_mean,pm25_fall,heavy_pollution_days on at_risk/missed",
    "plan-target-water": "target drinking_water_compliance,inner_river_compliance,black_odour_free_rivers on "
                         "at_risk/missed",
    "plan-target-waste": "target sorting_correct_rate on at_risk/missed",
}


def _limit_text(limit: Limit) -> str:
    if limit.overrides:
        raise AssertionError("per-site overrides: pin them too")
    factor = f"{limit.factor:g} x " if limit.factor != 1 else ""
    if limit.value is not None:
        return f"{factor}{limit.value:g}"
    if limit.by_date is not None:
        parts = []
        for i, entry in enumerate(limit.by_date):
            until = limit.by_date[i + 1].since if i + 1 < len(limit.by_date) else None
            text = f"{entry.value:g}" + (f" from {entry.since}" if entry.since else "")
            parts.append(text + (f" until {until - timedelta(days=1)}" if until and not entry.since else ""))
        return factor + ", ".join(parts)
    return f"{factor}site {limit.site}"


def describe(rule: AnyRule) -> str:
    """A rule's kind, metric and limits in the words of PINNED."""
    if isinstance(rule, AbsenceRule):
        return f"absence k={rule.k:g}"
    if isinstance(rule, RatioRule):
        return f"ratio {rule.numerator}/{rule.denominator} {rule.op} {_limit_text(rule.limit)}"
    if isinstance(rule, TargetRule):
        return f"target {','.join(rule.targets)} on {'/'.join(rule.on)}"
    clear = rule.clear_condition()
    clear_limit = "same" if clear.limit == rule.limit else _limit_text(clear.limit)
    return f"{rule.kind} {rule.metric} {rule.op} {_limit_text(rule.limit)} | {clear.op} {clear_limit}"


def test_every_shipped_rule_is_pinned() -> None:
    shipped = {r.id: describe(r) for r in RULES}
    assert set(shipped) == set(PINNED), "pin the limits of new rules here, drop those of removed ones"
    changed = {rid: (shipped[rid], PINNED[rid]) for rid in shipped if shipped[rid] != PINNED[rid]}
    assert not changed, f"shipped rule limits differ from their pins (file, pin): {changed}"


# -- exact values ------------------------------------------------------------------------------------------


def _rank(x: float) -> int:
    """Floats in order as integers: consecutive floats have consecutive ranks."""
    bits: int = struct.unpack("<q", struct.pack("<d", x))[0]
    return bits if bits >= 0 else -(bits & 0x7FFF_FFFF_FFFF_FFFF)


def _unrank(r: int) -> float:
    bits = r if r >= 0 else (-r) | -0x8000_0000_0000_0000
    value: float = struct.unpack("<d", struct.pack("<q", bits))[0]
    return value


@dataclass(frozen=True)
class Driver:
    """Readings of one device that put a metric where a test wants it."""

    device: Device
    metric: str
    name: str  # the raw input moved
    integer: bool
    low: float
    high: float

    def values(self, x: float) -> dict[str, float | int | bool]:
        calm: dict[str, float | int | bool] = dict(CATALOG[self.device.type].calm)
        if self.name in ("occupied_spots", "correct"):
            calm[{"occupied_spots": "total_spots", "correct": "inspected"}[self.name]] = int(self.high)
        calm[self.name] = int(x) if self.integer else x
        if self.name == "tilt_x":
            calm["tilt_y"] = 0.0
        return calm

    def metric_at(self, x: float) -> float:
        got = derive(self.metric, self.values(x), self.device, T0)
        assert got is not None, f"{self.metric} not derivable from {self.values(x)}"
        return got.value

    def derivable_up_to(self) -> Driver:
        """This driver with its high end lowered to the last input the standard can still rate (AQI tables end)."""
        if derive(self.metric, self.values(self.high), self.device, T0) is not None:
            return self
        lo, hi = self._pos(self.low), self._pos(self.high)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if derive(self.metric, self.values(self._val(mid)), self.device, T0) is not None:
                lo = mid
            else:
                hi = mid - 1
        return Driver(self.device, self.metric, self.name, self.integer, self.low, self._val(lo))

    def _pos(self, x: float) -> int:
        return int(x) if self.integer else _rank(x)

    def _val(self, p: int) -> float:
        return float(p) if self.integer else _unrank(p)

    def first(self, pred: Callable[[float], bool]) -> float | None:
        """The input nearest its low end for which ``pred`` of the metric holds (pred monotone along the input)."""
        lo, hi = self._pos(self.low), self._pos(self.high)
        if not pred(self.metric_at(self._val(hi))):
            return None
        while lo < hi:
            mid = (lo + hi) // 2
            if pred(self.metric_at(self._val(mid))):
                hi = mid
            else:
                lo = mid + 1
        return self._val(lo)

    def around(self, limit: float) -> Iterator[float]:
        """Inputs giving the metric just below, exactly at (when reachable) and just above ``limit``."""
        rising = self.metric_at(self.high) >= self.metric_at(self.low)
        for pred in ((lambda v: v >= limit), (lambda v: v > limit)) if rising else \
                ((lambda v: v < limit), (lambda v: v <= limit)):
            x = self.first(pred)
            if x is not None:
                yield x
                before = self._val(self._pos(x) - 1)
                if before >= self.low:
                    yield before


def driver(rule: AnyRule, device: Device) -> Driver:
    metric = rule.numerator if isinstance(rule, RatioRule) else getattr(rule, "metric", "")
    name = DRIVERS.get(metric, metric)
    dtype = CATALOG[device.type]
    meta = dtype.metric(name)
    assert meta.minimum is not None and meta.maximum is not None, name
    high = meta.maximum if name not in ("occupied_spots", "correct") else 2000
    return Driver(device, metric, name, meta.kind == "int", meta.minimum, high).derivable_up_to()


def expected_limit(limit: Limit, device: Device, ts: datetime) -> float:
    """The limit a rule should apply, worked out without the rule model's own code."""
    if limit.value is not None:
        return limit.value * limit.factor
    if limit.by_date is not None:
        day = (ts + timedelta(hours=8)).date()
        return [e.value for e in limit.by_date if e.since is None or e.since <= day][-1] * limit.factor
    if limit.site == "target_class":
        return WATER_CLASS_ORDINAL[site_target_class(device)] * limit.factor
    if limit.site == "crack_limit":
        return {"concrete": 0.5}.get(device.site.structure_type or "masonry", 1.0) * limit.factor
    return tilt_limit(device.site.storeys or 1) * limit.factor


def watched(rule: AnyRule) -> Device:
    """A shipped device the rule watches, whose calm reading does not fire it."""
    for device in REGISTRY:
        if rule.applies_to(device):
            return device
    raise AssertionError(f"{rule.id} watches no shipped device")


def fired(transitions: list[AlertTransition], rule: AnyRule, event: str = "firing") -> bool:
    return any(t.alert.rule_id == rule.id and t.event == event for t in transitions)


def reading(device: Device, ts: datetime, values: Mapping[str, float | int | bool]) -> Reading:
    return Reading(device=device, ts=ts, seq=None, values=dict(values))


RULE_IDS = [r.id for r in RULES]
BY_ID = {r.id: r for r in RULES}


# -- threshold and held rules: instantaneous values ------------------------------------------------------


def _feed(engine: Engine, rule: ThresholdRule | HeldRule, device: Device, start: datetime,
          values: Mapping[str, float | int | bool]) -> tuple[list[AlertTransition], datetime]:
    """One reading, or as many as a held rule needs for its count and duration; returns the end time."""
    n, step = 1, timedelta(seconds=device.interval_s)
    if isinstance(rule, HeldRule):
        n = max(rule.for_count or 1, 2 if rule.for_s else 1)
        if rule.for_s:
            step = max(step, timedelta(seconds=math.ceil(rule.for_s / (n - 1))))
    out: list[AlertTransition] = []
    for i in range(n):
        out += engine.process(reading(device, start + i * step, values))
    return out, start + (n - 1) * step


def _per_reading(rule: AnyRule) -> bool:
    """Whether one reading gives the rule's metric (hourly metrics are rated from an hour's means instead)."""
    device = watched(rule)
    return derive(getattr(rule, "metric", ""), dict(CATALOG[device.type].calm), device, T0) is not None


INSTANT = [r.id for r in RULES if isinstance(r, ThresholdRule | HeldRule) and _per_reading(r)]


@pytest.mark.parametrize("rule_id", INSTANT)
def test_fires_exactly_beyond_its_limit(rule_id: str) -> None:
    rule = BY_ID[rule_id]
    assert isinstance(rule, ThresholdRule | HeldRule)
    device = watched(rule)
    drive = driver(rule, device)
    limit = expected_limit(rule.limit, device, T0)
    probes = list(drive.around(limit))
    assert probes, f"{rule.id}: no input reaches {rule.metric} {limit}"
    outcomes = set()
    for x in probes:
        engine = Engine([rule], REGISTRY)
        out, _ = _feed(engine, rule, device, T0, drive.values(x))
        value = drive.metric_at(x)
        assert fired(out, rule) == OPS[rule.op](value, limit), f"{rule.id}: {rule.metric}={value!r} vs {limit!r}"
        outcomes.add(fired(out, rule))
    assert outcomes == {True, False}, f"{rule.id}: probes on one side of the limit only"


@pytest.mark.parametrize("rule_id", INSTANT)
def test_clears_exactly_on_its_clear_condition(rule_id: str) -> None:
    rule = BY_ID[rule_id]
    assert isinstance(rule, ThresholdRule | HeldRule)
    device = watched(rule)
    drive = driver(rule, device)
    limit = expected_limit(rule.limit, device, T0)
    clear: Condition = rule.clear or Condition(op=NEGATION[rule.op], limit=rule.limit)
    clear_limit = expected_limit(clear.limit, device, T0)
    firing = next(x for x in drive.around(limit) if OPS[rule.op](drive.metric_at(x), limit))
    for x in drive.around(clear_limit):
        engine = Engine([rule], REGISTRY)
        out, end = _feed(engine, rule, device, T0, drive.values(firing))
        assert fired(out, rule), f"{rule.id} did not fire on {drive.values(firing)}"
        value = drive.metric_at(x)
        later = engine.process(reading(device, end + timedelta(seconds=device.interval_s), drive.values(x)))
        should = OPS[clear.op](value, clear_limit) and not OPS[rule.op](value, limit)
        assert fired(later, rule, "resolved") == should, f"{rule.id}: {rule.metric}={value!r} vs clear {clear_limit}"


# -- window and rate rules: several readings ----------------------------------------------------------


def _window_values(rule: WindowRule, device: Device, value: float) -> list[Reading]:
    """Readings of one constant value at the device's interval over the whole window."""
    drive = driver(rule, device)
    steps = int(rule.window_s // device.interval_s)
    return [reading(device, T0 + timedelta(seconds=i * device.interval_s), drive.values(value))
            for i in range(steps)]


@pytest.mark.parametrize("rule_id", [r.id for r in RULES if isinstance(r, WindowRule)])
def test_window_rule_edges(rule_id: str) -> None:
    rule = BY_ID[rule_id]
    assert isinstance(rule, WindowRule) and rule.agg == "mean", "add the edges of other aggregates here"
    device = watched(rule)
    end = T0 + timedelta(seconds=rule.window_s)
    limit = expected_limit(rule.limit, device, end)
    cases = [limit * (1 - RELATIVE), limit * (1 + RELATIVE)] + ([limit] if float(limit).is_integer() else [])
    for value in cases:
        engine = Engine([rule], REGISTRY)
        out = [t for r in _window_values(rule, device, value) for t in engine.process(r)]
        assert fired(out, rule) == OPS[rule.op](value, limit), f"{rule.id}: mean {value!r} vs {limit!r}"
    # Too few valid hours: the standard says nothing yet, so nothing fires however high the values.
    short = _window_values(rule, device, limit * 10)[: int((rule.min_count - 1) * 3600 // device.interval_s)]
    engine = Engine([rule], REGISTRY)
    assert not fired([t for r in short for t in engine.process(r)], rule)


def _rate_pair(rule: RateRule, device: Device, rate: float, base: float) -> list[Reading]:
    span = max(rule.min_span_s, min(rule.per_s, rule.window_s))
    drive = driver(rule, device)
    return [reading(device, T0, drive.values(base)),
            reading(device, T0 + timedelta(seconds=span), drive.values(base + rate * span / rule.per_s))]


@pytest.mark.parametrize("rule_id", [r.id for r in RULES if isinstance(r, RateRule)])
def test_rate_rule_edges(rule_id: str) -> None:
    rule = BY_ID[rule_id]
    assert isinstance(rule, RateRule)
    device = watched(rule)
    base = float(CATALOG[device.type].calm[rule.metric])
    limit = expected_limit(rule.limit, device, T0)
    clear = rule.clear_condition()
    clear_limit = expected_limit(clear.limit, device, T0)
    signs = (1, -1) if rule.absolute else (1,)
    for rate in (limit * (1 - RELATIVE), limit * (1 + RELATIVE)):
        for sign in signs:  # an absolute rate fires on a fall as on a rise
            engine = Engine([rule], REGISTRY)
            out = [t for r in _rate_pair(rule, device, sign * rate, base) for t in engine.process(r)]
            assert fired(out, rule) == OPS[rule.op](rate, limit), f"{rule.id}: rate {sign * rate!r} vs {limit!r}"
    if not rule.absolute:  # the same fall is no rise
        engine = Engine([rule], REGISTRY)
        assert not fired([t for r in _rate_pair(rule, device, -2 * limit, base) for t in engine.process(r)], rule)
    # A rise spread over less than min_span_s is not judged at all (bucketed: the buckets' starts are apart).
    engine = Engine([rule], REGISTRY)
    quick = _rate_pair(rule, device, limit * 100, base)
    quick[1] = reading(device, T0 + timedelta(seconds=rule.min_span_s - (rule.bucket_s or 0) - 1), quick[1].values)
    assert not [t for r in quick for t in engine.process(r)]
    for rate in (clear_limit * (1 - RELATIVE), clear_limit * (1 + RELATIVE)):
        engine = Engine([rule], REGISTRY)
        first = _rate_pair(rule, device, limit * 2, base)
        assert fired([t for r in first for t in engine.process(r)], rule)
        # The next reading, one window after the firing one, against it alone: the rate over that span (a
        # bucketed window keeps the buckets of its last window_s, so one bucket less apart).
        span = max(rule.min_span_s, min(rule.per_s, rule.window_s))
        gap = rule.window_s - (rule.bucket_s or 0)
        then = first[1].ts + timedelta(seconds=gap)
        value = float(first[1].values[rule.metric]) + rate * gap / rule.per_s
        drive = driver(rule, device)
        later = engine.process(reading(device, then, drive.values(value)))
        assert span > 0
        assert fired(later, rule, "resolved") == OPS[clear.op](rate, clear_limit), f"{rule.id}: clear at {rate!r}"


# -- ratio and absence rules ------------------------------------------------------------------------------


def _exact_fraction(limit: float) -> tuple[int, int]:
    """The smallest denominator d with an integer n where n / d is exactly ``limit``."""
    for den in range(1, 100_001):
        num = round(limit * den)
        if num / den == limit:
            return num, den
    raise AssertionError(f"no exact fraction for {limit}")


@pytest.mark.parametrize("rule_id", [r.id for r in RULES if isinstance(r, RatioRule)])
def test_ratio_rule_edges(rule_id: str) -> None:
    rule = BY_ID[rule_id]
    assert isinstance(rule, RatioRule)
    device = watched(rule)
    limit = expected_limit(rule.limit, device, T0)
    num, den = _exact_fraction(limit)
    scale = max(1, math.ceil(rule.min_denominator / den)) * 10
    num, den = num * scale, den * scale
    close_at = T0 + timedelta(days=1, seconds=rule.min_denominator and 900)
    for n in (num - 1, num, num + 1):
        engine = Engine([rule], REGISTRY, lateness_s=600)
        engine.process(reading(device, T0, {rule.denominator: den, rule.numerator: n}))
        out = engine.process(reading(device, close_at, {rule.denominator: den, rule.numerator: den}))
        assert fired(out, rule) == OPS[rule.op](n / den, limit), f"{rule.id}: {n}/{den} vs {limit}"
    # A day with fewer than min_denominator in the denominator is not judged.
    engine = Engine([rule], REGISTRY, lateness_s=600)
    small = math.ceil(rule.min_denominator) - 1
    engine.process(reading(device, T0, {rule.denominator: small, rule.numerator: 0}))
    assert not fired(engine.process(reading(device, close_at, {rule.denominator: den, rule.numerator: den})), rule)


@pytest.mark.parametrize("rule_id", [r.id for r in RULES if isinstance(r, AbsenceRule)])
def test_absence_rule_edges(rule_id: str) -> None:
    rule = BY_ID[rule_id]
    assert isinstance(rule, AbsenceRule)
    device = watched(rule)
    allowed = timedelta(seconds=rule.k * device.interval_s)
    calm = dict(CATALOG[device.type].calm)
    engine = Engine([rule], REGISTRY)
    engine.process(reading(device, T0, calm))
    assert engine.tick(T0 + allowed) == [], "silent for exactly k intervals is not yet offline"
    late = engine.tick(T0 + allowed + timedelta(milliseconds=1))
    assert fired(late, rule) and late[0].alert.limit == allowed.total_seconds()
    back = engine.process(reading(device, T0 + allowed * 2, calm))
    assert fired(back, rule, "resolved")


@pytest.mark.parametrize("rule_id", [r.id for r in RULES if isinstance(r, PointRule)])
def test_point_rule_edges(rule_id: str) -> None:
    """The guide's share rule at its edges: one indicator severe in 60 % of the window's samples, two in 30 %."""
    rule = BY_ID[rule_id]
    assert isinstance(rule, PointRule)
    device = watched(rule)
    calm = dict(CATALOG[device.type].calm)
    step = timedelta(seconds=device.interval_s)
    n = 20
    assert n * step.total_seconds() <= rule.window_s and n >= rule.min_samples

    def feed(engine: Engine, severe: int, values: dict[str, float]) -> list[AlertTransition]:
        # Calm samples first, severe ones last, so no earlier grade sees a larger severe share.
        samples = [calm] * (n - severe) + [{**calm, **values}] * severe
        return [t for i, v in enumerate(samples) for t in engine.process(reading(device, T0 + i * step, v))]

    one, two = {"do": 0.1}, {"do": 0.1, "transparency": 5.0}
    for severe, values, fires in ((12, one, True), (11, one, False), (6, two, True), (5, two, False)):
        engine = Engine([rule], REGISTRY)
        assert fired(feed(engine, severe, values), rule) == fires, f"{rule.id}: {severe}/{n} severe {values}"
    # Fewer samples than min_samples are not graded however severe; one more calm sample clears 12 of 20.
    engine = Engine([rule], REGISTRY)
    few = [t for i in range(rule.min_samples - 1)
           for t in engine.process(reading(device, T0 + i * step, {**calm, **one}))]
    assert not fired(few, rule)
    engine = Engine([rule], REGISTRY)
    assert fired(feed(engine, 12, one), rule)
    assert fired(engine.process(reading(device, T0 + n * step, calm)), rule, "resolved")


@pytest.mark.parametrize("rule_id", [r.id for r in RULES if isinstance(r, TargetRule)])
def test_target_rule_edges(rule_id: str) -> None:
    rule = BY_ID[rule_id]
    assert isinstance(rule, TargetRule)
    for target in rule.targets:
        engine = Engine([rule], REGISTRY)
        verdict = TargetVerdict(target, target, 2026, "no_data", "min", None, 0.95)
        assert engine.judge_targets([verdict], T0) == []
        steps: list[tuple[int, Status, str | None]] = [(1, "at_risk", "firing"), (2, "missed", None),
                                                       (3, "no_data", None), (4, "on_track", "resolved"),
                                                       (5, "missed", "firing")]
        for day, status, event in steps:
            out = engine.judge_targets([replace(verdict, status=status)], T0 + timedelta(days=day))
            assert [t.event for t in out] == ([event] if event else []), f"{rule.id} {target} {status}"


def test_every_rule_kind_has_edges() -> None:
    covered = (ThresholdRule, HeldRule, WindowRule, RateRule, RatioRule, AbsenceRule, PointRule, TargetRule)
    assert all(isinstance(r, covered) for r in RULES), "a new rule kind needs its edge test here"


