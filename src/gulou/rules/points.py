"""A monitoring point's samples over a window, graded by the black-odour guide's share rule (black_odour_point)."""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from typing import Any

from gulou.rules.derive import BLACK_ODOUR_LABEL, BLACK_ODOUR_LEVEL, Derived
from gulou.rules.standards import BlackOdourPointResult, BlackOdourResult, black_odour, black_odour_point


class SampleWindow:
    """Black-odour samples (indicator values and their per-sample grade) in [newest − window, newest]."""

    def __init__(self, window_ms: int, depth_cm: float | None = None) -> None:
        self.window_ms = window_ms
        self.depth_cm = depth_cm
        self.ts: list[int] = []
        self.samples: list[dict[str, float]] = []
        self.results: list[BlackOdourResult] = []

    def add(self, ts_ms: int, values: Mapping[str, float]) -> bool:
        """Grade and keep one sample in time order (a repeated stamp replaces it); False if it cannot be graded."""
        sample = dict(values)
        try:
            result = black_odour(sample, self.depth_cm)
        except ValueError:
            return False  # no black-odour indicator, or a value the guide cannot grade
        i = bisect.bisect_left(self.ts, ts_ms)
        if i < len(self.ts) and self.ts[i] == ts_ms:
            self.samples[i], self.results[i] = sample, result
        else:
            self.ts.insert(i, ts_ms)
            self.samples.insert(i, sample)
            self.results.insert(i, result)
        cut = bisect.bisect_left(self.ts, self.ts[-1] - self.window_ms)
        if cut:
            del self.ts[:cut], self.samples[:cut], self.results[:cut]
        return True

    def __len__(self) -> int:
        return len(self.ts)

    def grade(self) -> BlackOdourPointResult | None:
        """The point's level over the window's samples, or None while it holds none."""
        return black_odour_point(self.results) if self.results else None

    def judge(self, ts_ms: int, values: Mapping[str, float | int | bool], names: Sequence[str],
              min_samples: int) -> Derived | None:
        """Add a reading's indicators and grade the point: its level (0, 1, 2) with the grade in words.

        None when the reading has no gradable indicator or the window holds fewer than ``min_samples``.
        """
        sample = {n: float(values[n]) for n in names if n in values and not isinstance(values[n], bool)}
        if not sample or not self.add(ts_ms, sample) or len(self) < min_samples:
            return None
        graded = self.grade()
        if graded is None:
            return None
        level = BLACK_ODOUR_LEVEL[graded.level]
        share = max(graded.severe_share.values(), default=0.0)
        return Derived(float(level), label=f"{BLACK_ODOUR_LABEL[level]}（{graded.samples}个样本，单项指标重度样本"
                                           f"占比最高{share:.0%}）", result=graded)

    def state(self) -> dict[str, Any]:
        """JSON-ready state (the samples; grades are recomputed on restore)."""
        return {"ts": self.ts, "samples": self.samples}

    def restore(self, state: dict[str, Any]) -> None:
        """Load state saved by ``state()``."""
        self.ts, self.samples, self.results = [], [], []
        for ts, sample in zip(state["ts"], state["samples"], strict=True):
            self.add(int(ts), {k: float(v) for k, v in sample.items()})
