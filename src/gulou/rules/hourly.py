"""HJ 633 hourly values of one air station: clock-hour means, their validity, moving means and the hourly AQI.

HJ 633 rates 1-hour mean concentrations. A station's hour (Beijing clock hour, labelled by its start) is the
mean of its readings in that hour, valid when they cover ``hourly_min_minutes`` (45) minutes at the device's
reporting interval. The hourly AQI takes every valid hourly mean, the O3 8 h moving mean (the 8 hours ending
with this one, valid with ``o3_8h_min_hours``) and, for HJ 633's SO2 note (no IAQI from an SO2 1 h value
above 800), the SO2 24 h moving mean (valid with ``daily_min_hours``). Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gulou.rules.standards import AqiResult, aqi
from gulou.rules.standards.aqi import MEASURED
from gulou.rules.standards.tables import gb3095
from gulou.timeutil import CHINA_TZ, from_ms

HOUR_MS = 3_600_000
_CST_OFFSET_MS = int(CHINA_TZ.utcoffset(None).total_seconds() * 1000)
# Hours of hourly means kept for the moving means: the SO2 24 h mean is the longest.
KEEP_HOURS = 24


def hour_start(ts_ms: int) -> int:
    """Start (epoch ms) of the Beijing clock hour containing ``ts_ms`` (whole-hour offset, so plain truncation)."""
    return (ts_ms + _CST_OFFSET_MS) // HOUR_MS * HOUR_MS - _CST_OFFSET_MS


def _minimum(key: str) -> int:
    return int(gb3095().validity[key].value)


@dataclass(frozen=True)
class HourlyValues:
    """One station hour: valid means, minutes of data per pollutant, and the moving means ending with it."""

    device_id: str
    hour_ms: int
    means: dict[str, float]
    minutes: dict[str, float]
    o3_8h: float | None = None
    o3_8h_hours: int = 0
    so2_24h: float | None = None
    so2_24h_hours: int = 0

    def inputs(self) -> dict[str, float]:
        """The concentrations the hourly AQI is rated from (names of ``gulou.rules.standards.aqi``)."""
        values = dict(self.means)
        if self.o3_8h is not None:
            values["o3_8h"] = self.o3_8h
        if self.so2_24h is not None and "so2" in values:
            values["so2_24h"] = self.so2_24h  # rated only when the SO2 1 h value is above the table
        return values

    def invalid(self) -> dict[str, float]:
        """Pollutants measured in the hour whose data fall short of the minimum, with their minutes."""
        return {p: m for p, m in self.minutes.items() if p not in self.means}


@dataclass(frozen=True)
class HourlyAqi:
    """The hourly AQI of a station hour; ``result`` is None when no pollutant has a valid hourly mean."""

    values: HourlyValues
    result: AqiResult | None

    @property
    def device_id(self) -> str:
        """The station."""
        return self.values.device_id

    @property
    def hour_ms(self) -> int:
        """Start of the hour (epoch ms)."""
        return self.values.hour_ms


def rate_hour(values: HourlyValues) -> HourlyAqi:
    """HJ 633 hourly-mode AQI of a station hour (edition by the hour's Beijing date)."""
    inputs = values.inputs()
    if not any(p in inputs for p in MEASURED):
        return HourlyAqi(values, None)
    try:
        return HourlyAqi(values, aqi(inputs, from_ms(values.hour_ms), "hourly"))
    except ValueError:
        # The standard refuses values it cannot rate (negative, not finite): the hour has no AQI.
        return HourlyAqi(values, None)


@dataclass
class HourAccumulator:
    """Readings of a station's open hours and its recent valid hourly means, closed hour by hour."""

    interval_s: int
    # hour start -> pollutant -> [sum, count]
    open: dict[int, dict[str, list[float]]] = field(default_factory=dict)
    # Reading stamps counted per open hour, so a redelivered reading (QoS 1) is not counted twice.
    seen: dict[int, set[int]] = field(default_factory=dict)
    # hour start -> valid hourly means (the last KEEP_HOURS closed hours)
    history: dict[int, dict[str, float]] = field(default_factory=dict)
    closed_before: int | None = None

    def add(self, ts_ms: int, values: Mapping[str, float | int | bool]) -> bool:
        """Count a reading's pollutants in its hour; False when that hour is already closed."""
        start = hour_start(ts_ms)
        if self.closed_before is not None and start < self.closed_before:
            return False
        seen = self.seen.setdefault(start, set())
        if ts_ms in seen:
            return True
        numbers = {p: float(values[p]) for p in MEASURED
                   if p in values and not isinstance(values[p], bool) and math.isfinite(float(values[p]))}
        if not numbers:
            return True
        seen.add(ts_ms)
        sums = self.open.setdefault(start, {})
        for name, value in numbers.items():
            entry = sums.setdefault(name, [0.0, 0.0])
            entry[0] += value
            entry[1] += 1
        return True

    def close(self, device_id: str, before_ms: int) -> list[HourlyValues]:
        """Close every open hour that ends by ``before_ms``, oldest first, with its moving means."""
        done = sorted(h for h in self.open if h + HOUR_MS <= before_ms)
        closed = [self._close_one(device_id, h) for h in done]
        end = hour_start(before_ms)
        if self.closed_before is None or end > self.closed_before:
            self.closed_before = end
        return closed

    def _close_one(self, device_id: str, start: int) -> HourlyValues:
        sums = self.open.pop(start)
        self.seen.pop(start, None)
        need_s = _minimum("hourly_min_minutes") * 60
        minutes: dict[str, float] = {}
        means: dict[str, float] = {}
        for name, (total, count) in sums.items():
            covered_s = count * self.interval_s
            minutes[name] = min(60.0, covered_s / 60)
            if covered_s >= need_s:
                means[name] = total / count
        self.history[start] = means
        for old in [h for h in self.history if h <= start - KEEP_HOURS * HOUR_MS]:
            del self.history[old]
        o3_8h, o3_hours = self._moving(start, "o3", 8, _minimum("o3_8h_min_hours"))
        so2_24h, so2_hours = self._moving(start, "so2", 24, _minimum("daily_min_hours"))
        return HourlyValues(device_id, start, means, minutes, o3_8h, o3_hours, so2_24h, so2_hours)

    def _moving(self, end: int, name: str, hours: int, need: int) -> tuple[float | None, int]:
        found = [self.history[h][name] for h in range(end - (hours - 1) * HOUR_MS, end + 1, HOUR_MS)
                 if h in self.history and name in self.history[h]]
        return (sum(found) / len(found) if len(found) >= need else None), len(found)

    def state(self) -> dict[str, Any]:
        """JSON-ready state."""
        return {"interval_s": self.interval_s,
                "open": {str(h): sums for h, sums in self.open.items()},
                "seen": {str(h): sorted(s) for h, s in self.seen.items()},
                "history": {str(h): means for h, means in self.history.items()},
                "closed_before": self.closed_before}

    @classmethod
    def from_state(cls, state: dict[str, Any], interval_s: int) -> HourAccumulator:
        """Rebuild from ``state()`` (the registry's current interval wins over the saved one)."""
        closed = state.get("closed_before")
        return cls(
            interval_s=interval_s,
            open={int(h): {p: [float(v[0]), float(v[1])] for p, v in sums.items()}
                  for h, sums in state.get("open", {}).items()},
            seen={int(h): {int(t) for t in s} for h, s in state.get("seen", {}).items()},
            history={int(h): {p: float(v) for p, v in means.items()} for h, means in state.get("history", {}).items()},
            closed_before=None if closed is None else int(closed))


class StationHours:
    """Every air station's hour accumulator; closed hours kept for ``take`` when the series writer wants them."""

    def __init__(self, collect: bool) -> None:
        self.collect = collect
        self.stations: dict[str, HourAccumulator] = {}
        self._closed: list[HourlyAqi] = []

    def get(self, device_id: str, interval_s: int, wanted: bool) -> HourAccumulator | None:
        """The station's accumulator; a new one only when its hours are wanted (rules or the series)."""
        found = self.stations.get(device_id)
        if found is None and (wanted or self.collect):
            found = self.stations[device_id] = HourAccumulator(interval_s)
        return found

    def close(self, device_id: str, before_ms: int) -> list[HourlyAqi]:
        """Close and rate the station's hours ending by ``before_ms``."""
        hours = self.stations.get(device_id)
        rated = [rate_hour(v) for v in hours.close(device_id, before_ms)] if hours is not None else []
        if self.collect:
            self._closed.extend(rated)
        return rated

    def take(self) -> list[HourlyAqi]:
        """Hours closed since the last call (empty unless collecting)."""
        taken, self._closed = self._closed, []
        return taken

    def state(self) -> dict[str, Any]:
        """JSON-ready state of every station."""
        return {device_id: hours.state() for device_id, hours in self.stations.items()}

    def restore(self, state: dict[str, Any], intervals: Mapping[str, int]) -> None:
        """Load ``state()`` for the stations still registered (``intervals``: device id → reporting interval)."""
        self.stations = {device_id: HourAccumulator.from_state(saved, intervals[device_id])
                         for device_id, saved in state.items() if device_id in intervals}
