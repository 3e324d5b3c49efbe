"""The catalog: every device type by name, listed explicitly (adding a type = one module + one line)."""

from __future__ import annotations

from gulou.devices.base import DeviceType
from gulou.devices.types.air_station import AirStation
from gulou.devices.types.parking_lot import ParkingLot
from gulou.devices.types.smart_bin import SmartBin
from gulou.devices.types.sorting_point import SortingPoint
from gulou.devices.types.structure_monitor import StructureMonitor
from gulou.devices.types.water_station import WaterStation

CATALOG: dict[str, DeviceType] = {
    t.name: t
    for t in (AirStation(), WaterStation(), SmartBin(), SortingPoint(), ParkingLot(), StructureMonitor())
}


def device_type(name: str) -> DeviceType:
    """Look up a device type, with the known names in the error."""
    try:
        return CATALOG[name]
    except KeyError:
        raise KeyError(f"unknown device type {name!r}; known: {', '.join(sorted(CATALOG))}") from None
