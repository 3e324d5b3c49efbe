"""The catalog: every device type by name, listed explicitly (adding a type = one module + one line).

The domains and the site kinds are not listed anywhere else: they are those of the types below, in catalog
order, so a type that brings a new domain or site kind needs nothing beyond its own module and its line here.
"""

from __future__ import annotations

import functools

from gulou.devices.base import DeviceType
from gulou.devices.types.air_station import AirStation
from gulou.devices.types.parking_lot import ParkingLot
from gulou.devices.types.smart_bin import SmartBin
from gulou.devices.types.sorting_point import SortingPoint
from gulou.devices.types.structure_monitor import StructureMonitor
from gulou.devices.types.water_station import WaterStation

CATALOG: dict[str, DeviceType] = {
    t.name: t
    for t in (WaterStation(), AirStation(), SmartBin(), SortingPoint(), ParkingLot(), StructureMonitor())
}


# Cached because the collector checks every topic against them; a test that adds a type to CATALOG clears them.
@functools.cache
def domains() -> tuple[str, ...]:
    """The domains of the catalog's types, in catalog order."""
    return tuple(dict.fromkeys(t.domain for t in CATALOG.values()))


@functools.cache
def site_kinds() -> dict[str, tuple[str, ...]]:
    """Each site kind a type is installed at, with the site attributes it needs."""
    kinds: dict[str, tuple[str, ...]] = {}
    for t in CATALOG.values():
        if kinds.setdefault(t.site_kind, t.site_fields) != t.site_fields:
            raise RuntimeError(f"{t.name}: site kind {t.site_kind!r} is declared with other fields by another type")
    return kinds


# For command-line choices, fixed when the command is defined.
DOMAINS: tuple[str, ...] = domains()


def device_type(name: str) -> DeviceType:
    """Look up a device type, with the known names in the error."""
    try:
        return CATALOG[name]
    except KeyError:
        raise KeyError(f"unknown device type {name!r}; known: {', '.join(sorted(CATALOG))}") from None
