"""Flat, serialisable records that cross the sink boundary (and the disk spool)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from gulou.devices.base import DEFAULT_PERIOD, Period
from gulou.devices.contract import Reading, StatusUpdate
from gulou.devices.registry import Device


# One Point is built per stored reading. Slots keep it small; not frozen, because a frozen dataclass sets each of
# its 14 fields through object.__setattr__ (about 1 µs a reading, measured); nothing changes a Point once built.
@dataclass(slots=True)
class Point:
    """One validated reading, tagged for storage. ``ts_ms`` is epoch milliseconds (UTC)."""

    device_id: str
    domain: str
    type: str
    street: str
    site: str
    ts_ms: int
    values: dict[str, float | int | bool]
    seq: int | None = None
    # Domain keys operators filter by: river (water), category (waste bins), lot_type (parking).
    tags: dict[str, str] = field(default_factory=dict)
    # Station fields (HJ 212): the period the values cover (``ts_ms`` is its start), each value's data flag,
    # the values whose flag is not valid (kept apart from ``values``), and whether the data was sent again.
    period: Period = DEFAULT_PERIOD
    flags: dict[str, str] = field(default_factory=dict)
    invalid: dict[str, float | int | bool] = field(default_factory=dict)
    backfill: bool = False
    source: str = "mqtt"  # where the reading entered: "mqtt", or "hj212" through the station gateway

    @classmethod
    def from_reading(cls, reading: Reading) -> Point:
        """Flatten a decoded reading with the registry attributes operators filter by."""
        d = reading.device
        tags = _device_tags(d)
        return cls(d.id, d.domain, d.type, d.street, d.site.id, int(reading.ts.timestamp() * 1000),
                   dict(reading.values), reading.seq, dict(tags) if tags else {}, reading.period,
                   dict(reading.flags) if reading.flags else {}, dict(reading.invalid) if reading.invalid else {},
                   reading.backfill, reading.source)

    def to_json(self) -> dict[str, Any]:
        """Plain dict for the spool."""
        return asdict(self)


def _device_tags(device: Device) -> dict[str, str]:
    """The device's tags, computed once per device object (a registry reload brings new objects)."""
    entry = _TAGS.get(id(device))
    # The entry holds the device itself, so its id cannot be reused by another object while it is cached.
    if entry is not None and entry[0] is device:
        return entry[1]
    if len(_TAGS) >= _TAGS_MAX:
        _TAGS.clear()
    tags = {k: v for k, v in (("river", device.site.river), ("category", device.category),
                              ("lot_type", device.site.lot_type)) if v}
    _TAGS[id(device)] = (device, tags)
    return tags


_TAGS: dict[int, tuple[Device, dict[str, str]]] = {}
_TAGS_MAX = 100_000


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """One online/offline status message."""

    device_id: str
    domain: str
    street: str
    site: str
    ts_ms: int
    online: bool
    battery: float | None = None
    rssi: float | None = None

    @classmethod
    def from_update(cls, update: StatusUpdate) -> StatusEvent:
        """Flatten a decoded status message."""
        d = update.device
        return cls(device_id=d.id, domain=d.domain, street=d.street, site=d.site.id,
                   ts_ms=int(update.ts.timestamp() * 1000), online=update.online, battery=update.battery,
                   rssi=update.rssi)

    def to_json(self) -> dict[str, Any]:
        """Plain dict for the spool."""
        return asdict(self)


@dataclass(frozen=True)
class DeadLetter:
    """A rejected message, kept whole with the reason so nothing is lost."""

    topic: str
    payload: bytes
    reason: str
    detail: str
    received_ms: int
    device_id: str | None = None
    domain: str | None = None
    # Where it came from: "mqtt" (the contract's topics) or "hj212" (a station's packet, bytes as received).
    source: str = "mqtt"
    mn: str | None = None  # the HJ 212 MN the packet claims


@dataclass
class Batch:
    """What one write carries to a sink."""

    points: list[Point] = field(default_factory=list)
    statuses: list[StatusEvent] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.points) + len(self.statuses)
