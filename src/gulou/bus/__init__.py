"""The message bus between collectors, storage writers and rules workers (in-process, or NATS JetStream)."""

from __future__ import annotations

from gulou.bus.base import (
    Bus,
    BusError,
    BusFull,
    BusStats,
    BusUnavailable,
    Consumer,
    Delivery,
    Envelope,
    Lease,
    Leases,
    PublishResult,
    ReaderClosed,
    Snapshot,
    SnapshotConflict,
    Snapshots,
    Topology,
)

__all__ = ["Bus", "BusError", "BusFull", "BusStats", "BusUnavailable", "Consumer", "Delivery", "Envelope", "Lease",
           "Leases", "PublishResult", "ReaderClosed", "Snapshot", "SnapshotConflict", "Snapshots", "Topology"]
