"""Event-time windows keyed by reading timestamps (milliseconds), serialisable for restarts."""

from __future__ import annotations

import bisect
import math
from typing import Any


def percentile(values: list[float], p: float) -> float:
    """Percentile with linear interpolation between closest ranks (numpy's default method)."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * p / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def aggregate(values: list[float], agg: str, p: float | None = None) -> float:
    """mean, max, min or percentile of a non-empty list."""
    if agg == "mean":
        return math.fsum(values) / len(values)
    if agg == "max":
        return max(values)
    if agg == "min":
        return min(values)
    return percentile(values, p if p is not None else 50.0)


def slope(points: list[tuple[int, float]]) -> float | None:
    """Least-squares slope (value per ms) of (ms, value) points; None without two distinct times."""
    if len(points) < 2:
        return None
    origin = points[0][0]
    xs = [float(t - origin) for t, _ in points]
    mean_x = math.fsum(xs) / len(xs)
    mean_y = math.fsum(v for _, v in points) / len(points)
    sxx = math.fsum((x - mean_x) ** 2 for x in xs)
    if sxx == 0:
        return None
    return math.fsum((x - mean_x) * (v - mean_y) for x, (_, v) in zip(xs, points, strict=True)) / sxx


class EventWindow:
    """Readings (ts_ms, value) sorted by event time, holding only what the window can still use."""

    def __init__(self, window_ms: int) -> None:
        self.window_ms = window_ms
        self.ts: list[int] = []
        self.values: list[float] = []

    def add(self, ts_ms: int, value: float) -> None:
        """Insert in event-time order (late data within the bound lands in its place); same ts overwrites."""
        i = bisect.bisect_left(self.ts, ts_ms)
        if i < len(self.ts) and self.ts[i] == ts_ms:
            self.values[i] = value
        else:
            self.ts.insert(i, ts_ms)
            self.values.insert(i, value)
        self._evict()

    def _evict(self) -> None:
        if not self.ts:
            return
        # The window is [newest − window, newest]: a reading exactly one window old still counts, so a
        # 5-minute rise is seen between two readings 300 s apart.
        cut = bisect.bisect_left(self.ts, self.ts[-1] - self.window_ms)
        if cut:
            del self.ts[:cut]
            del self.values[:cut]

    def current(self) -> list[float]:
        """Values in [newest − window, newest]."""
        return list(self.values)

    def span(self) -> tuple[tuple[int, float], tuple[int, float]] | None:
        """Oldest and newest (ts, value) pair, or ``None`` with fewer than two readings."""
        if len(self.ts) < 2:
            return None
        return (self.ts[0], self.values[0]), (self.ts[-1], self.values[-1])

    def state(self) -> dict[str, Any]:
        """JSON-ready state."""
        return {"ts": self.ts, "values": self.values}

    def restore(self, state: dict[str, Any]) -> None:
        """Load state saved by ``state()``."""
        self.ts = [int(t) for t in state["ts"]]
        self.values = [float(v) for v in state["values"]]


class BucketWindow:
    """Per-bucket (sum, count) so a 24 h mean of hourly means needs 24 entries, not 1440 readings."""

    def __init__(self, window_ms: int, bucket_ms: int, bucket_min_count: int = 1, dedupe: bool = True) -> None:
        self.window_ms = window_ms
        self.bucket_ms = bucket_ms
        self.bucket_min_count = bucket_min_count
        # A month of daily means would keep thousands of stamps for little gain: a repeated reading of a slow
        # gauge hardly moves its day's mean, so long windows may skip the duplicate check.
        self.dedupe = dedupe
        self.buckets: dict[int, list[float]] = {}
        self.newest = -1
        # Readings already counted, so a duplicate delivery (QoS 1 redelivery) is not counted twice.
        self._seen: dict[int, set[int]] = {}

    def add(self, ts_ms: int, value: float) -> None:
        """Add a reading to its bucket."""
        start = ts_ms - ts_ms % self.bucket_ms
        if self.dedupe:
            seen = self._seen.setdefault(start, set())
            if ts_ms in seen:
                return
            seen.add(ts_ms)
        entry = self.buckets.setdefault(start, [0.0, 0.0])
        entry[0] += value
        entry[1] += 1
        self.newest = max(self.newest, start)
        first = self.newest - self.window_ms + self.bucket_ms
        for old in [b for b in self.buckets if b < first]:
            del self.buckets[old]
            self._seen.pop(old, None)

    def current(self) -> list[float]:
        """Means of the valid buckets in the window ending with the newest bucket."""
        return [mean for _, mean in self.series()]

    def series(self) -> list[tuple[int, float]]:
        """(bucket start ms, mean) of the valid buckets in the window ending with the newest bucket."""
        first = self.newest - self.window_ms + self.bucket_ms
        return [(b, s / n) for b, (s, n) in sorted(self.buckets.items())
                if b >= first and n >= self.bucket_min_count]

    def state(self) -> dict[str, Any]:
        """JSON-ready state."""
        return {"buckets": {str(b): v for b, v in self.buckets.items()}, "newest": self.newest,
                "seen": {str(b): sorted(s) for b, s in self._seen.items()}}

    def restore(self, state: dict[str, Any]) -> None:
        """Load state saved by ``state()``."""
        self.buckets = {int(b): [float(v[0]), float(v[1])] for b, v in state["buckets"].items()}
        self.newest = int(state["newest"])
        self._seen = {int(b): {int(t) for t in s} for b, s in state.get("seen", {}).items()}
