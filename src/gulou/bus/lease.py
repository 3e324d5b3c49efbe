"""Who should own which partition: rendezvous hashing over the live workers, with a grace period for strays.

Pure functions, no I/O: the keeper (``gulou.bus.keeper``) feeds them what the lease store says.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

WORKER_PREFIX = "worker."


def partition_key(group: str, partition: int) -> str:
    """Lease name of a partition of a group: ``rules.p7``."""
    return f"{group}.p{partition}"


def worker_key(group: str, worker: str) -> str:
    """Lease name that marks a worker of a group as alive: ``worker.rules.<id>``."""
    return f"{WORKER_PREFIX}{group}.{worker}"


def parse_partition_key(group: str, name: str) -> int | None:
    """The partition a lease name stands for, or None when it is not one of ``group``'s partition leases."""
    prefix = f"{group}.p"
    if not name.startswith(prefix) or not name[len(prefix):].isdigit():
        return None
    return int(name[len(prefix):])


def _weight(worker: str, partition: int) -> bytes:
    return hashlib.blake2b(f"{worker}\0{partition}".encode(), digest_size=8).digest()


def preferred_owner(partition: int, workers: Iterable[str]) -> str | None:
    """The live worker a partition belongs to by rendezvous hashing (None when no worker is alive).

    When a worker joins or leaves, only the partitions it wins or held move.
    """
    return max(workers, key=lambda w: (_weight(w, partition), w), default=None)


@dataclass(frozen=True)
class Plan:
    """What a worker should do next: partitions to take, and partitions to hand over to their preferred owner."""

    acquire: tuple[int, ...]
    release: tuple[int, ...]


def plan(partitions: int, me: str, workers: Iterable[str], holders: Mapping[int, str],
         free_for: Mapping[int, int], grace: int = 2) -> Plan:
    """Decide which partitions ``me`` takes and releases.

    ``holders`` maps each held partition to its owner; ``free_for`` counts, for each free partition, how many
    consecutive looks found it free. A free partition is taken by its preferred owner at once, by anyone else
    only after ``grace`` looks (its preferred owner may be slow; coverage matters more than placement). A held
    partition is released when another live worker is its preferred owner, so load spreads as workers join.
    """
    live = sorted(set(workers) | {me})
    acquire: list[int] = []
    release: list[int] = []
    for p in range(partitions):
        best = preferred_owner(p, live)
        owner = holders.get(p)
        if owner is None:
            if best == me or free_for.get(p, 0) >= grace:
                acquire.append(p)
        elif owner == me and best != me:
            release.append(p)
    return Plan(tuple(acquire), tuple(release))


def renew_due(acquired_at: float, ttl_s: float, now: float) -> bool:
    """Renew a third of the TTL after the last write, so two renewals may fail before the lease lapses."""
    return now - acquired_at >= ttl_s / 3
