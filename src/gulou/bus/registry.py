"""The registration table of buses: a new kind (Kafka, say) is one module plus one line here."""

from __future__ import annotations

from gulou.bus.base import Bus, Topology
from gulou.bus.jetstream import JetStreamBus
from gulou.bus.memory import InProcessBus
from gulou.settings import Settings

# Tried in order; the in-process bus takes over when no other is configured.
BUSES: dict[str, type[Bus]] = {
    "jetstream": JetStreamBus,
    "memory": InProcessBus,
}


def open_bus(settings: Settings, topology: Topology | None = None) -> Bus:
    """The configured bus (not started). Raises ValueError for a bus URL no implementation takes."""
    wanted = topology or Topology(settings.bus.partitions, partitioned=("rules",) if settings.bus.rules else ())
    for kind in BUSES.values():
        bus = kind.from_settings(settings, wanted)
        if bus is not None:
            return bus
    raise ValueError(f"no bus implementation for {settings.bus.url!r}")
