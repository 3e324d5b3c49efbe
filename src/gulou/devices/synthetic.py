"""Synthetic registries of any size for load tests, spread over Gulou's streets and all device types."""

from __future__ import annotations

import random
from typing import Any

from gulou.devices.catalog import CATALOG
from gulou.devices.registry import LAT_RANGE, LON_RANGE, STREETS


def synthetic_registry(count: int, seed: int = 1) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return (sites, devices) rows for ``count`` devices; one site per device keeps it simple and valid.

    Each type gets its ``synthetic_share`` of the devices, shares taken relative to their sum so a new type
    needs no change to the others (at least one device each); the type with the largest share takes the
    rounding remainder.
    """
    types = list(CATALOG.values())
    if count < len(types):
        raise ValueError(f"count must be at least {len(types)} (one device per type)")
    rng = random.Random(seed)
    total = sum(t.synthetic_share for t in types)
    counts = {t.name: max(1, int(count * t.synthetic_share / total)) for t in types}
    largest = max(types, key=lambda t: t.synthetic_share).name
    counts[largest] += count - sum(counts.values())
    sites: list[dict[str, Any]] = []
    devices: list[dict[str, Any]] = []
    lat_mid = (26.06, 26.12)
    lon_mid = (119.25, 119.33)
    assert LAT_RANGE[0] < lat_mid[0] and lon_mid[1] < LON_RANGE[1]
    n = 0
    for dtype in types:
        for _ in range(counts[dtype.name]):
            n += 1
            street = STREETS[n % len(STREETS)]
            site_id = f"syn-site-{n:07d}"
            site: dict[str, Any] = {
                "id": site_id, "kind": dtype.site_kind, "name": f"合成点位{n}", "street": street,
                "lat": round(rng.uniform(*lat_mid), 5), "lon": round(rng.uniform(*lon_mid), 5),
            }
            device: dict[str, Any] = {"id": f"syn-{n:07d}", "type": dtype.name, "site": site_id,
                                      "name": f"合成设备{n}"}
            site.update(dtype.synthetic_site(rng, n))
            device.update(dtype.synthetic_device(rng, n))
            sites.append(site)
            devices.append(device)
    return sites, devices
