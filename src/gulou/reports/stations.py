"""Which stations count for what: evaluation vs indicative air stations, a section's water body."""

from __future__ import annotations

from typing import Literal

from gulou.devices.registry import Device, Registry, Site

WaterBody = Literal["river", "lake"]


def certified(device: Device) -> bool:
    """Whether the registry marks an air station as a certified (national-method) evaluation station."""
    return device.evaluation_station


def evaluation_stations(registry: Registry) -> list[Device]:
    """Air stations whose daily values make the district's figures.

    Only certified stations when the registry marks any; until it does, every air station counts, and the
    district figures are then labelled indicative (they rest on micro-stations).
    """
    air = registry.by_domain("air")
    marked = [d for d in air if certified(d)]
    return marked or air


def indicative(device: Device) -> bool:
    """A micro-station's figures are indicative: not a national-method measurement."""
    return not certified(device)


def water_body(site: Site) -> WaterBody:
    """``lake`` for lakes and reservoirs (TP and TN on the lake columns of GB 3838), else ``river``."""
    return "lake" if site.water_body == "lake" else "river"
