"""Pure rule evaluation: readings and status messages in, alert transitions out. No I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from gulou.devices.contract import Reading, StatusUpdate
from gulou.devices.registry import Device, Registry
from gulou.rules.alerts import AlertBook, AlertTransition, Signal
from gulou.rules.derive import CLASS_BY_ORDINAL, Derived, derive
from gulou.rules.hourly import HourlyAqi, StationHours
from gulou.rules.model import (
    DERIVED,
    HOURLY,
    AbsenceRule,
    AnyRule,
    HeldRule,
    PointRule,
    RateRule,
    RatioRule,
    TargetRule,
    ThresholdRule,
    WindowRule,
    compare,
)
from gulou.rules.state import load_state, new_window, save_state
from gulou.rules.targets import TargetVerdict
from gulou.rules.windows import BucketWindow, aggregate, slope
from gulou.timeutil import CHINA_TZ, from_ms, to_ms
from gulou.tsdb.records import Point, StatusEvent

Item = Reading | StatusUpdate | Point | StatusEvent
SNAPSHOT_VERSION = 1
_PERIOD_MS = {"hour": 3_600_000, "day": 86_400_000}
_CST_OFFSET_MS = int(CHINA_TZ.utcoffset(None).total_seconds() * 1000)


@dataclass
class EngineStats:
    """Counters an operator watches."""

    readings: int = 0
    statuses: int = 0
    evaluations: int = 0
    out_of_order: int = 0
    late_ignored: int = 0
    unknown_device: int = 0
    transitions: int = 0


@dataclass(slots=True)
class Evaluation:
    """What one item gave: its device and time, the transitions, and the derived metrics computed on the way."""

    device: Device | None
    ts_ms: int
    transitions: list[AlertTransition] = field(default_factory=list)
    # Reading values and the derived metrics of a reading (``None`` where inputs were missing or unusable).
    values: Mapping[str, float | int | bool] | None = None
    derived: dict[str, Derived | None] = field(default_factory=dict)


def period_start(ts_ms: int, period: str) -> int:
    """Start (epoch ms) of the Beijing-time calendar hour or day containing ts."""
    size = _PERIOD_MS[period]
    return (ts_ms + _CST_OFFSET_MS) // size * size - _CST_OFFSET_MS


class Engine:
    """Evaluates rules against readings (``process``) and the clock (``tick``); state is snapshot-able."""

    def __init__(self, rules: Sequence[AnyRule], registry: Registry, *, lateness_s: float = 600.0,
                 default_renotify_s: float | None = 3600.0, derive_always: Sequence[str] = ()) -> None:
        self.rules = [r for r in rules if r.enabled]
        # Metrics derived for every reading even when no rule asks (the derived series writers need them);
        # an hourly metric here (``aqi``) keeps every closed station hour for ``take_hours``.
        self.derive_always = tuple(derive_always)
        self.collect_hours = any(m in HOURLY for m in self.derive_always)
        self.registry = registry
        self.lateness_ms = int(lateness_s * 1000)
        self.book = AlertBook(default_renotify_s)
        self.stats = EngineStats()
        self._rules_for: dict[str, list[AnyRule]] = {}
        self._absence = [r for r in self.rules if isinstance(r, AbsenceRule)]
        self._ratio = [r for r in self.rules if isinstance(r, RatioRule)]
        self._targets = [r for r in self.rules if isinstance(r, TargetRule)]
        self._watermark: dict[str, int] = {}
        self._last_seen: dict[str, int] = {}
        # Per (rule, subject) state: held counters, windows, ratio periods.
        self._state: dict[str, Any] = {}
        self._group_device: dict[str, str] = {}
        # Per air station: the open clock hours and recent hourly means (HJ 633 hourly values).
        self._hours = StationHours(self.collect_hours)
        self._hourly_for: dict[str, list[AnyRule]] = {}

    # -- inputs ---------------------------------------------------------------------------------
    def rules_for(self, device: Device) -> list[AnyRule]:
        """Rules that watch a device (cached)."""
        found = self._rules_for.get(device.id)
        if found is None:
            found = self._rules_for[device.id] = [r for r in self.rules if r.applies_to(device)]
        return found

    def process(self, item: Item) -> list[AlertTransition]:
        """Evaluate every applicable rule against one reading or status message."""
        return self.evaluate(item).transitions

    def evaluate(self, item: Item) -> Evaluation:
        """Like ``process``, also giving the item's device, time and derived metrics.

        Epoch milliseconds order everything; the datetime rules and alerts need is the item's own (a
        decoded message) or made once from its milliseconds (a stored record).
        """
        if isinstance(item, Reading | StatusUpdate):
            device: Device | None = item.device
            ts = item.ts
            ts_ms = to_ms(ts)
        else:
            device = self.registry.get(item.device_id)
            ts_ms = item.ts_ms
            ts = from_ms(ts_ms)
        if device is None:
            self.stats.unknown_device += 1
            return Evaluation(None, ts_ms)
        if isinstance(item, StatusUpdate | StatusEvent):
            return Evaluation(device, ts_ms, self._status(device, ts, item.online))
        derived: dict[str, Derived | None] = {}
        transitions = self._reading(device, ts, ts_ms, item.values, derived)
        for metric in self.derive_always:
            if metric not in derived and metric not in HOURLY:
                derived[metric] = derive(metric, item.values, device, ts)
        return Evaluation(device, ts_ms, transitions, item.values, derived)

    def _status(self, device: Device, ts: datetime, online: bool) -> list[AlertTransition]:
        self.stats.statuses += 1
        out: list[AlertTransition] = []
        if online:
            return out
        for rule in self.rules_for(device):
            if isinstance(rule, AbsenceRule) and rule.on_status:
                self.stats.evaluations += 1
                self._emit(out, rule, device, f"{rule.id}|{device.id}", Signal("fire", ts))
        return out

    def _reading(self, device: Device, ts: datetime, ts_ms: int, values: Mapping[str, float | int | bool],
                 cache: dict[str, Derived | None]) -> list[AlertTransition]:
        self.stats.readings += 1
        wm = self._watermark.get(device.id)
        stale = wm is not None and ts_ms < wm
        late = wm is not None and ts_ms < wm - self.lateness_ms
        if stale:
            self.stats.out_of_order += 1
        if late:
            self.stats.late_ignored += 1
        else:
            self._watermark[device.id] = max(wm or ts_ms, ts_ms)
        out: list[AlertTransition] = []
        for rule in self.rules_for(device):
            key = f"{rule.id}|{device.id}"
            if isinstance(rule, AbsenceRule):
                if not stale:
                    self._last_seen[device.id] = ts_ms
                    self._emit(out, rule, device, key, Signal("clear", ts))
                continue
            if isinstance(rule, RatioRule):
                if not late:
                    self._ratio_add(out, rule, device, ts_ms, values)
                continue
            if isinstance(rule, TargetRule):
                continue  # judged from the year's figures (judge_targets), never from a reading
            if isinstance(rule, PointRule):
                if not late:
                    self._point(out, rule, device, key, ts_ms, values)
                continue
            metric = rule.metric
            if metric in HOURLY:
                continue  # judged on the hour's mean when the hour closes (below)
            if metric not in cache:
                cache[metric] = derive(metric, values, device, ts)
            derived = cache[metric]
            if derived is None:
                continue
            self._judge(out, rule, device, key, ts, ts_ms, derived, stale, late)
        hours = self._hours.get(device.id, device.interval_s, bool(self._hourly_rules(device))) \
            if device.domain == "air" else None
        if hours is not None:
            if not late:
                hours.add(ts_ms, values)
            self._close_hours(out, device, self._watermark[device.id] - self.lateness_ms)
        return out

    def _judge(self, out: list[AlertTransition], rule: AnyRule, device: Device, key: str, ts: datetime,
               ts_ms: int, derived: Derived, stale: bool, late: bool, end_ms: int | None = None) -> None:
        """Evaluate one value-based rule on a derived value at ``ts`` (a reading's, or an hour's start)."""
        self.stats.evaluations += 1
        if isinstance(rule, HeldRule):
            if not stale:  # an older reading says nothing about the current state
                self._emit(out, rule, device, key, self._held(rule, device, key, ts, ts_ms, derived))
        elif isinstance(rule, ThresholdRule):
            if not stale:
                self._emit(out, rule, device, key, self._compare(rule, device, ts, derived))
        elif isinstance(rule, WindowRule | RateRule) and not late:
            if end_ms is None:
                end_ms = max(ts_ms, self._watermark[device.id])
            end = ts if end_ms == ts_ms else from_ms(end_ms)
            if isinstance(rule, WindowRule):
                signal = self._window(rule, device, key, ts_ms, end, derived.value)
            else:
                signal = self._rate(rule, device, key, ts_ms, end, derived.value)
            if signal is not None:
                self._emit(out, rule, device, key, signal)

    # -- hourly values (HJ 633) -------------------------------------------------------------------
    def _hourly_rules(self, device: Device) -> list[AnyRule]:
        found = self._hourly_for.get(device.id)
        if found is None:
            found = self._hourly_for[device.id] = [
                r for r in self.rules_for(device) if getattr(r, "metric", None) in HOURLY]
        return found

    def _close_hours(self, out: list[AlertTransition], device: Device, before_ms: int) -> None:
        """Close the station's hours that no accepted reading can reach any more, and judge their AQI."""
        for hour in self._hours.close(device.id, before_ms):
            if hour.result is None:
                continue
            derived = Derived(float(hour.result.aqi), label=hour.result.category, result=hour.result)
            ts = from_ms(hour.hour_ms)
            for rule in self._hourly_rules(device):
                self._judge(out, rule, device, f"{rule.id}|{device.id}", ts, hour.hour_ms, derived, False, False,
                            end_ms=hour.hour_ms)

    def take_hours(self) -> list[HourlyAqi]:
        """Station hours closed since the last call (kept only when ``derive_always`` names an hourly metric)."""
        return self._hours.take()

    def tick(self, now: datetime) -> list[AlertTransition]:
        """Clock-driven checks: absence (device offline) and closing ratio periods."""
        now_ms = to_ms(now)
        out: list[AlertTransition] = []
        if self._absence:
            for device_id, seen_ms in self._last_seen.items():
                device = self.registry.get(device_id)
                if device is None:
                    continue
                for rule in self.rules_for(device):
                    if not isinstance(rule, AbsenceRule):
                        continue
                    allowed_ms = rule.k * device.interval_s * 1000
                    silent_ms = now_ms - seen_ms
                    if silent_ms > allowed_ms:
                        self.stats.evaluations += 1
                        self._emit(out, rule, device, f"{rule.id}|{device.id}",
                                   Signal("fire", now, value=silent_ms / 1000, limit=allowed_ms / 1000))
        for rule in self._ratio:
            for key in [k for k in self._state if k.startswith(f"{rule.id}|")]:
                self._ratio_close(out, rule, key, now_ms - self.lateness_ms)
        # A station that stopped reporting still gets its last hours closed once no reading can reach them.
        for device_id in list(self._hours.stations):
            device = self.registry.get(device_id)
            if device is not None:
                self._close_hours(out, device, now_ms - self.lateness_ms)
        return out

    # -- evaluation -------------------------------------------------------------------------------
    def _emit(self, out: list[AlertTransition], rule: AnyRule, device: Device, key: str, signal: Signal,
              site_level: bool = False) -> None:
        transition = self.book.apply(rule, device, key, signal, site_level)
        if transition is not None:
            self.stats.transitions += 1
            out.append(transition)

    @staticmethod
    def _labels(rule: ThresholdRule | HeldRule | WindowRule | RateRule | PointRule, value: float, limit: float) -> \
            tuple[str | None, str | None]:
        if rule.metric == "water_class":
            return CLASS_BY_ORDINAL.get(int(value)), CLASS_BY_ORDINAL.get(int(limit))
        return None, None

    def _compare(self, rule: ThresholdRule | HeldRule | WindowRule | RateRule | PointRule, device: Device,
                 ts: datetime,
                 derived: Derived, held: bool = True) -> Signal:
        value = derived.value
        limit = rule.limit.resolve(device, ts)
        labels = self._labels(rule, value, limit)
        value_label = derived.label if derived.label is not None else labels[0]
        kwargs: dict[str, Any] = {"value": value, "limit": limit, "op": rule.op, "value_label": value_label,
                                  "limit_label": labels[1], "exceedance": derived.exceedance}
        if held and compare(rule.op, value, limit):
            return Signal("fire", ts, **kwargs)
        clear = rule.clear_condition()
        if compare(clear.op, value, clear.limit.resolve(device, ts)):
            return Signal("clear", ts, **kwargs)
        return Signal("hold", ts, **kwargs)

    def _held(self, rule: HeldRule, device: Device, key: str, ts: datetime, ts_ms: int, derived: Derived) -> Signal:
        state = self._state.setdefault(key, {"count": 0, "since": None})
        if compare(rule.op, derived.value, rule.limit.resolve(device, ts)):
            state["count"] += 1
            state["since"] = state["since"] if state["since"] is not None else ts_ms
            enough = (rule.for_count is None or state["count"] >= rule.for_count) and (
                rule.for_s is None or ts_ms - state["since"] >= rule.for_s * 1000)
            return self._compare(rule, device, ts, derived, held=enough) if enough else Signal("hold", ts)
        state["count"], state["since"] = 0, None
        return self._compare(rule, device, ts, derived)

    def _window(self, rule: WindowRule, device: Device, key: str, ts_ms: int, end: datetime,
                value: float) -> Signal | None:
        window = self._state.get(key)
        if window is None:
            window = self._state[key] = new_window(rule, device)
        window.add(ts_ms, value)
        values = window.current()
        if len(values) < rule.min_count:
            return None  # too few valid values: the standard says nothing yet, so neither fire nor clear
        agg = aggregate(values, rule.agg, rule.percentile)
        return self._compare(rule, device, end, Derived(agg))

    def _rate(self, rule: RateRule, device: Device, key: str, ts_ms: int, end: datetime,
              value: float) -> Signal | None:
        window = self._state.get(key)
        if window is None:
            window = self._state[key] = new_window(rule, device)
        window.add(ts_ms, value)
        if isinstance(window, BucketWindow):
            means = window.series()
            per_ms = slope(means)
            if per_ms is None or means[-1][0] - means[0][0] < rule.min_span_s * 1000:
                return None
            rate = per_ms * 1000 * rule.per_s
            return self._compare(rule, device, end, Derived(abs(rate) if rule.absolute else rate))
        span = window.span()
        if span is None:
            return None
        (t0, v0), (t1, v1) = span
        dt_ms = t1 - t0
        if dt_ms <= 0 or dt_ms < rule.min_span_s * 1000:
            return None
        rate = (v1 - v0) / (dt_ms / 1000) * rule.per_s
        return self._compare(rule, device, end, Derived(abs(rate) if rule.absolute else rate))

    def _point(self, out: list[AlertTransition], rule: PointRule, device: Device, key: str, ts_ms: int,
               values: Mapping[str, float | int | bool]) -> None:
        """Grade the point over its window's samples (the guide's share rule) and judge the level."""
        window = self._state.get(key)
        if window is None:
            window = self._state[key] = new_window(rule, device)
        derived = window.judge(ts_ms, values, DERIVED[rule.metric], rule.min_samples)
        if derived is not None:
            self.stats.evaluations += 1
            self._emit(out, rule, device, key, self._compare(rule, device, from_ms(window.ts[-1]), derived))

    def judge_targets(self, verdicts: Sequence[TargetVerdict], at: datetime) -> list[AlertTransition]:
        """Fire ``target`` rules for targets at risk or missed, resolve them when back on track (app layer)."""
        out: list[AlertTransition] = []
        for rule in self._targets:
            for verdict in (v for v in verdicts if v.id in rule.targets):
                self.stats.evaluations += 1
                self._emit(out, rule, verdict.subject(rule.domain), f"{rule.id}|target:{verdict.id}",
                           verdict.signal(rule.on, at))
        return out

    def _ratio_add(self, out: list[AlertTransition], rule: RatioRule, device: Device, ts_ms: int,
                   values: Mapping[str, float | int | bool]) -> None:
        num, den = values.get(rule.numerator), values.get(rule.denominator)
        if num is None or den is None:
            return
        key = f"{rule.id}|site:{device.site.id}" if rule.group_by == "site" else f"{rule.id}|{device.id}"
        self._group_device[key] = device.id
        group = self._state.setdefault(key, {"periods": {}, "closed": None})
        start = period_start(ts_ms, rule.period)
        if group["closed"] is not None and start < group["closed"]:
            self.stats.late_ignored += 1  # the period it belongs to has already been closed and judged
            return
        periods = group["periods"]
        start_key = str(start)
        entry = periods.setdefault(start_key, [0.0, 0.0])
        entry[0] += float(num)
        entry[1] += float(den)
        self.stats.evaluations += 1
        # A reading of a later period closes the earlier ones once the lateness bound has passed.
        self._ratio_close(out, rule, key, ts_ms - self.lateness_ms)

    def _ratio_close(self, out: list[AlertTransition], rule: RatioRule, key: str, before_ms: int) -> None:
        group = self._state.get(key)
        device = self.registry.get(self._group_device.get(key, ""))
        if group is None or device is None:
            return
        periods: dict[str, list[float]] = group["periods"]
        size = _PERIOD_MS[rule.period]
        for start in sorted(periods, key=int):
            end = int(start) + size
            if end > before_ms:
                break
            num, den = periods.pop(start)
            group["closed"] = end
            if den < rule.min_denominator:
                continue
            end_ts = from_ms(end - 1)
            limit = rule.limit.resolve(device, end_ts)
            verdict: Literal["fire", "clear"] = "fire" if compare(rule.op, num / den, limit) else "clear"
            self._emit(out, rule, device, key,
                       Signal(verdict, end_ts, value=num / den, limit=limit, op=rule.op),
                       site_level=rule.group_by == "site")

    # -- persistence ------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """All state needed to resume after a restart, as JSON-ready data."""
        return {"version": SNAPSHOT_VERSION, "watermark": dict(self._watermark), "last_seen": dict(self._last_seen),
                "state": save_state(self._state), "groups": dict(self._group_device),
                "alerts": self.book.state(), "stats": asdict(self.stats),
                "hours": self._hours.state()}

    def restore(self, snap: dict[str, Any]) -> None:
        """Resume from a snapshot; state of rules that no longer exist is dropped."""
        if snap.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"engine snapshot version {snap.get('version')!r} is not {SNAPSHOT_VERSION}")
        rules = {r.id: r for r in self.rules}
        self._watermark = {k: int(v) for k, v in snap["watermark"].items()}
        self._last_seen = {k: int(v) for k, v in snap["last_seen"].items()}
        self._group_device = dict(snap.get("groups", {}))
        self._state = load_state(snap["state"], rules, self.registry)
        self._hours.restore(snap.get("hours", {}), {d.id: d.interval_s for d in self.registry.by_domain("air")})
        self.book.restore([a for a in snap["alerts"] if a["rule_id"] in rules])
        self.stats = EngineStats(**snap.get("stats", {}))

    def active(self) -> list[dict[str, Any]]:
        """Currently firing alerts as JSON."""
        return [a.to_json() for a in self.book.active.values()]

