"""Helpers for the simulator tests: small registries cut from the shipped one, decoding at a fixed clock."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from gulou.devices.registry import Registry
from gulou.simulators.model import SimMessage
from gulou.timeutil import CHINA_TZ as CST

# A Monday, so weekday patterns apply on the first day.
START = datetime(2026, 11, 23, 0, 0, tzinfo=CST)
# The Decoder rejects timestamps ahead of its clock; simulated time is in the future of the wall clock.
FAR_FUTURE = datetime(2040, 1, 1, tzinfo=CST)


def subset(registry: Registry, keep: Iterable[str]) -> Registry:
    """A registry with only the given device ids (their sites kept)."""
    ids = set(keep)
    devices = {k: d for k, d in registry.devices.items() if k in ids}
    sites = {d.site.id: d.site for d in devices.values()}
    return Registry(sites=sites, devices=devices, source=f"{registry.source} (subset)")


def per_type(registry: Registry, n: int) -> list[str]:
    """The first ``n`` device ids of every device type."""
    seen: dict[str, int] = {}
    out = []
    for d in registry:
        if seen.get(d.type, 0) < n:
            seen[d.type] = seen.get(d.type, 0) + 1
            out.append(d.id)
    return out


def readings(messages: Iterable[SimMessage], device_id: str) -> list[tuple[datetime, dict[str, Any]]]:
    """(simulated time, payload) of one device's telemetry."""
    return [(m.sim_time, json.loads(m.payload)) for m in messages
            if m.kind == "telemetry" and m.device_id == device_id and m.fault is None]
