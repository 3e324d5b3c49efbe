"""Synthetic registries of any size for load tests, spread over Gulou's streets and all device types."""

from __future__ import annotations

import random
from typing import Any

from gulou.devices.catalog import CATALOG
from gulou.devices.registry import BIN_CATEGORIES, LAT_RANGE, LON_RANGE, STREETS

# Share of devices per type in a synthetic deployment, roughly that of the shipped registry.
MIX: dict[str, float] = {
    "water_station": 0.07, "air_station": 0.09, "smart_bin": 0.46, "sorting_point": 0.12,
    "parking_lot": 0.09, "structure_monitor": 0.17,
}
SITE_KIND = {
    "water_station": "river_section", "air_station": "air_site", "smart_bin": "collection_point",
    "sorting_point": "collection_point", "parking_lot": "parking_lot", "structure_monitor": "building",
}


def synthetic_registry(count: int, seed: int = 1) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return (sites, devices) rows for ``count`` devices; one site per device keeps it simple and valid."""
    if count < len(MIX):
        raise ValueError(f"count must be at least {len(MIX)} (one device per type)")
    if set(MIX) != set(CATALOG):
        raise RuntimeError("synthetic MIX is out of date with the catalog")  # a new type needs a share
    rng = random.Random(seed)
    types = list(MIX)
    counts = {t: max(1, int(count * MIX[t])) for t in types}
    counts["smart_bin"] += count - sum(counts.values())
    sites: list[dict[str, Any]] = []
    devices: list[dict[str, Any]] = []
    lat_mid = (26.06, 26.12)
    lon_mid = (119.25, 119.33)
    assert LAT_RANGE[0] < lat_mid[0] and lon_mid[1] < LON_RANGE[1]
    n = 0
    for dtype in types:
        for _ in range(counts[dtype]):
            n += 1
            street = STREETS[n % len(STREETS)]
            site_id = f"syn-site-{n:07d}"
            site: dict[str, Any] = {
                "id": site_id, "kind": SITE_KIND[dtype], "name": f"合成点位{n}", "street": street,
                "lat": round(rng.uniform(*lat_mid), 5), "lon": round(rng.uniform(*lon_mid), 5),
            }
            device: dict[str, Any] = {"id": f"syn-{n:07d}", "type": dtype, "site": site_id,
                                      "name": f"合成设备{n}"}
            if dtype == "water_station":
                site.update(river=f"合成河{n % 20}", target_class=rng.choice(("III", "IV", "IV")))
            elif dtype == "parking_lot":
                site.update(capacity=rng.randint(50, 1500), lot_type=rng.choice(("office", "residential", "shared")))
            elif dtype == "structure_monitor":
                site.update(storeys=rng.randint(1, 7), structure_type=rng.choice(("masonry", "brick-wood")))
            elif dtype == "smart_bin":
                device["category"] = BIN_CATEGORIES[n % 4]
            sites.append(site)
            devices.append(device)
    return sites, devices
