"""The engine's per-(rule, subject) windows: which one a rule keeps, and saving and loading them for restarts."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, overload

from gulou.devices.registry import Device, Registry
from gulou.rules.model import AnyRule, PointRule, RateRule, WindowRule
from gulou.rules.points import SampleWindow
from gulou.rules.windows import BucketWindow, EventWindow

Window = EventWindow | BucketWindow | SampleWindow


@overload
def new_window(rule: PointRule, device: Device) -> SampleWindow: ...


@overload
def new_window(rule: WindowRule | RateRule, device: Device) -> EventWindow | BucketWindow: ...


def new_window(rule: WindowRule | RateRule | PointRule, device: Device) -> Window:
    """The empty window a rule keeps for one device."""
    window_ms = int(rule.window_s * 1000)
    if isinstance(rule, PointRule):
        return SampleWindow(window_ms)
    if rule.bucket_s is None:
        return EventWindow(window_ms)
    if isinstance(rule, RateRule):
        # Daily means of a slow gauge: a repeated reading hardly moves a day's mean, so no duplicate check.
        return BucketWindow(window_ms, int(rule.bucket_s * 1000), dedupe=False)
    # A valid hourly value needs 45 min of sampling: that many readings at the device's interval.
    need = max(1, math.ceil(rule.bucket_min_fraction * rule.bucket_s / device.interval_s - 1e-9))
    return BucketWindow(window_ms, int(rule.bucket_s * 1000), need)


def save_state(state: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-ready copy of the engine's per-key state."""
    return {key: value.state() if isinstance(value, Window) else value for key, value in state.items()}


def load_state(saved: Mapping[str, Any], rules: Mapping[str, AnyRule], registry: Registry) -> dict[str, Any]:
    """The per-key state of ``save_state`` for rules that still exist (and devices still registered)."""
    state: dict[str, Any] = {}
    for key, value in saved.items():
        rule_id, _, subject = key.partition("|")
        rule = rules.get(rule_id)
        if rule is None:
            continue
        if isinstance(rule, WindowRule | RateRule | PointRule):
            device = registry.get(subject)
            if device is None:
                continue
            window = new_window(rule, device)
            window.restore(value)
            state[key] = window
        else:
            state[key] = value
    return state
