"""Partitions by site: every device of a site lands in the same partition, so site-level rule state stays whole."""

from __future__ import annotations

from gulou.devices.registry import Registry

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193


def fnv1a32(data: bytes) -> int:
    """FNV-1a, 32 bits: the hash nats-server's ``partition()`` subject mapping uses."""
    h = _FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
    return h


def partition_of(site_id: str, partitions: int) -> int:
    """The partition of a site among ``partitions`` (stable across processes, versions and machines)."""
    if partitions < 1:
        raise ValueError(f"partitions must be positive, not {partitions}")
    return fnv1a32(site_id.encode("utf-8")) % partitions


class Partitioner:
    """Device id -> partition, computed from the registry's site of each device."""

    def __init__(self, registry: Registry, partitions: int) -> None:
        self.partitions = partitions
        self._by_device = {d.id: partition_of(d.site.id, partitions) for d in registry}

    def for_device(self, device_id: str | None) -> int | None:
        """The device's partition, or None when the device is not registered."""
        return self._by_device.get(device_id) if device_id is not None else None

    def for_site(self, site_id: str) -> int:
        """The site's partition."""
        return partition_of(site_id, self.partitions)
