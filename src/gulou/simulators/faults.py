"""Fault injection on the telemetry stream, deterministic for the seed, with a count per kind."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any

from gulou.devices.catalog import CATALOG
from gulou.devices.contract import telemetry_topic
from gulou.devices.registry import Device
from gulou.simulators.model import FAULT_KINDS, FaultKind, SimMessage, device_rng, rfc3339

LATE_HOURS = (2.0, 12.0)  # a late message carries a timestamp this many hours in the past
GHOST_DEVICES = 20  # unregistered device ids the unknown_device fault draws from


def check_rates(rates: Mapping[str, float]) -> dict[FaultKind, float]:
    """Validate fault rates (known kinds, each in 0..1, together at most 1)."""
    out: dict[FaultKind, float] = {}
    for kind, rate in rates.items():
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
        if not 0 <= rate <= 1:
            raise ValueError(f"fault rate of {kind} must lie in 0..1, got {rate}")
        out[kind] = float(rate)
    if sum(out.values()) > 1:
        raise ValueError("fault rates add up to more than 1")
    return out


def encode(payload: dict[str, Any]) -> bytes:
    """Compact JSON bytes, keys in insertion order (ts, seq, then metrics)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


class FaultInjector:
    """Turns each telemetry message into zero, one or two messages according to the fault rates.

    ``malformed``, ``out_of_range`` and ``late`` replace the reading; ``duplicate`` and ``unknown_device``
    add a second message; ``out_of_order`` holds the reading back until after the device's next one.
    """

    def __init__(self, seed: int, rates: Mapping[str, float] | None = None) -> None:
        self.rates = check_rates(rates or {})
        self.rng = device_rng(seed, "faults")
        self.counts: Counter[str] = Counter()
        self._held: dict[str, SimMessage] = {}

    def _pick(self) -> FaultKind | None:
        # One draw per message whatever the rates, so the stream of draws does not depend on them.
        u = self.rng.random()
        acc = 0.0
        for kind in FAULT_KINDS:
            acc += self.rates.get(kind, 0.0)
            if u < acc:
                return kind
        return None

    def process(self, message: SimMessage, payload: dict[str, Any], device: Device) -> list[SimMessage]:
        """Apply at most one fault to a telemetry message; release a held message after it."""
        kind = self._pick()
        held = self._held.pop(device.id, None)
        if kind == "out_of_order" and held is not None:
            kind = None  # one message held per device at a time
        out: list[SimMessage] = []
        if kind is None:
            out.append(message)
        elif kind == "out_of_order":
            self._held[device.id] = replace(message, fault="out_of_order")
        elif kind == "duplicate":
            out += [message, replace(message, fault="duplicate")]
        elif kind == "unknown_device":
            ghost = f"{device.id[:40]}-unreg-{self.rng.randrange(GHOST_DEVICES):02d}"
            out += [message, replace(message, topic=telemetry_topic(device.domain, ghost), fault="unknown_device")]
        else:
            out.append(replace(message, payload=self._corrupt(kind, payload, device, message), fault=kind))
        if held is not None:
            out.append(replace(held, sim_time=message.sim_time))
        for m in out:
            if m.fault is not None:
                self.counts[m.fault] += 1
        return out

    def release(self) -> list[SimMessage]:
        """Messages still held back (at the end of a run they go out last)."""
        held = list(self._held.values())
        self._held.clear()
        self.counts["out_of_order"] += len(held)
        return held

    def _corrupt(self, kind: FaultKind, payload: dict[str, Any], device: Device, message: SimMessage) -> bytes:
        if kind == "malformed":
            raw = encode(payload)
            if self.rng.random() < 0.5:
                return raw[: max(2, len(raw) // 2)]  # cut off mid-transmission
            return raw[:-1] + b",}"  # trailing comma: firmware that builds JSON by hand
        if kind == "late":
            hours = self.rng.uniform(*LATE_HOURS)
            return encode({**payload, "ts": rfc3339(message.sim_time - timedelta(hours=hours))})
        # out_of_range: one metric far above its physical maximum
        candidates = [m for m in CATALOG[device.type].metrics
                      if m.name in payload and m.kind != "bool" and m.maximum is not None]
        metric = candidates[self.rng.randrange(len(candidates))]
        assert metric.maximum is not None
        bad = metric.maximum * 2 + 1
        return encode({**payload, metric.name: int(bad) if metric.kind == "int" else float(bad)})
