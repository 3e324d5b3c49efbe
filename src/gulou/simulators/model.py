"""Shared simulator data: the message record, fault kinds, simulated-time helpers and duration parsing."""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from gulou.timeutil import CHINA_TZ

FaultKind = Literal["malformed", "out_of_range", "duplicate", "late", "out_of_order", "unknown_device"]
FAULT_KINDS: tuple[FaultKind, ...] = ("malformed", "out_of_range", "duplicate", "late", "out_of_order",
                                      "unknown_device")
# Faults a collector must refuse (dead-letter); the others are valid but repeated, late or reordered.
REJECTED_FAULTS: tuple[FaultKind, ...] = ("malformed", "out_of_range", "unknown_device")

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(d|h|m|s)")
_UNIT_S = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


@dataclass(frozen=True, slots=True)
class SimMessage:
    """One MQTT message of the simulated stream, stamped with the simulated time it belongs to."""

    sim_time: datetime
    topic: str
    payload: bytes
    retain: bool = False
    qos: int = 1
    fault: FaultKind | None = None

    @property
    def domain(self) -> str:
        """Domain segment of the topic."""
        return self.topic.split("/")[1]

    @property
    def device_id(self) -> str:
        """Device segment of the topic."""
        return self.topic.split("/")[2]

    @property
    def kind(self) -> str:
        """``telemetry`` or ``status``."""
        return self.topic.rsplit("/", 1)[-1]


def rfc3339(moment: datetime) -> str:
    """Format a simulated time as RFC 3339 with the +08:00 offset, to the second."""
    return moment.astimezone(CHINA_TZ).isoformat(timespec="seconds")


def local_hour(moment: datetime) -> float:
    """Hour of the day in Gulou local time as a fraction (07:30 → 7.5)."""
    local = moment.astimezone(CHINA_TZ)
    return local.hour + local.minute / 60 + local.second / 3600


def default_start(now: datetime) -> datetime:
    """``now`` rounded down to the minute, in local time."""
    return now.astimezone(CHINA_TZ).replace(second=0, microsecond=0)


def parse_duration(value: str | float | int) -> float:
    """Seconds from ``90``, ``90s``, ``30m``, ``2h``, ``1d`` or combinations such as ``1h30m``."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a text such as 2h or 1h30m")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = value.strip().lower()
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            seconds = float(text)
        elif text and _DURATION_PART.sub("", text).strip() == "":
            seconds = sum(float(n) * _UNIT_S[u] for n, u in _DURATION_PART.findall(text))
        else:
            raise ValueError(f"{value!r} is not a duration (use seconds or forms like 90s, 30m, 2h, 1d, 1h30m)")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{value!r}: a duration must be a finite number of seconds ≥ 0")
    return seconds


def device_rng(seed: int, *parts: object) -> random.Random:
    """A random stream determined only by the seed and the given labels (string seeding is stable)."""
    return random.Random(":".join([str(seed), *map(str, parts)]))


def clamp(value: float, low: float, high: float) -> float:
    """Limit a value to [low, high]."""
    return low if value < low else high if value > high else value


def bump(hour: float, centre: float, width: float) -> float:
    """A Gaussian bump of height 1 around ``centre`` o'clock, wrapping over midnight."""
    d = min(abs(hour - centre), 24 - abs(hour - centre))
    return math.exp(-0.5 * (d / width) ** 2)


def smoothstep(x: float) -> float:
    """0 below 0, 1 above 1, smooth in between."""
    x = clamp(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)
