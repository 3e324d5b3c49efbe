"""The pattern for each device type, listed explicitly (a new device type adds one line here)."""

from __future__ import annotations

from gulou.devices.registry import Device
from gulou.simulators.air import AirPattern
from gulou.simulators.base import Environment, Pattern
from gulou.simulators.parking import ParkingPattern
from gulou.simulators.structure import StructurePattern
from gulou.simulators.waste import BinPattern, SortingPattern
from gulou.simulators.water import WaterPattern

PATTERNS: dict[str, type[Pattern]] = {
    p.type_name: p
    for p in (AirPattern, WaterPattern, BinPattern, SortingPattern, ParkingPattern, StructurePattern)
}


def pattern_for(device: Device, seed: int, env: Environment) -> Pattern:
    """A fresh pattern instance for one device; a type without a pattern is a clear error."""
    try:
        cls = PATTERNS[device.type]
    except KeyError:
        raise KeyError(f"no simulator pattern for device type {device.type!r} (add one to "
                       f"gulou.simulators.patterns.PATTERNS)") from None
    return cls(device, seed, env)
