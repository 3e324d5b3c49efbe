"""Partition ownership for a group of workers: membership and partition leases, renewed, balanced, handed over."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Protocol

from gulou.bus.base import BusError, Lease, Leases
from gulou.bus.lease import parse_partition_key, partition_key, plan, renew_due, worker_key

log = logging.getLogger(__name__)


class PartitionHandler(Protocol):
    """What the keeper tells the worker: a partition is now yours, or no longer."""

    async def gained(self, partition: int, lease: Lease) -> None:
        """Start owning ``partition`` (restore its snapshot, open a reader with the lease revision as token).

        Called from the keeper's loop: start the work as a task and return.
        """

    async def lost(self, partition: int, graceful: bool) -> None:
        """Stop owning it; ``graceful``: the lease is still valid, commit first; else commit nothing."""


class PartitionKeeper:
    """Keeps this worker's membership lease and its share of ``partitions`` leases of ``group``."""

    def __init__(self, leases: Leases, group: str, partitions: int, worker: str, handler: PartitionHandler, *,
                 grace: int = 2, clock: Callable[[], float] = time.monotonic) -> None:
        self.leases, self.group, self.partitions, self.worker = leases, group, partitions, worker
        self.handler = handler
        self.grace = grace
        self.tick_s = leases.ttl_s / 3
        self._clock = clock
        self.owned: dict[int, Lease] = {}
        self._member: Lease | None = None
        self._free_for: dict[int, int] = {}

    def lease(self, partition: int) -> Lease | None:
        """The lease held on ``partition`` if it is still valid now (check before committing)."""
        lease = self.owned.get(partition)
        return lease if lease is not None and lease.valid(self._clock()) else None

    async def run(self, stop: asyncio.Event) -> None:
        """Tick until ``stop`` is set, then hand every partition back."""
        try:
            while not stop.is_set():
                try:
                    await self.tick()
                except BusError as exc:
                    log.warning("partition keeper for %s: %s", self.group, exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.tick_s)
        finally:
            await self.shutdown()

    async def tick(self) -> None:
        """Renew what is held, then take and release partitions according to the plan."""
        await self._renew_membership()
        await self._renew_owned()
        held = await self.leases.holders(f"{self.group}.p")
        holders = {p: owner for name, owner in held.items() if (p := parse_partition_key(self.group, name)) is not None}
        workers = set((await self.leases.holders(worker_key(self.group, ""))).values())
        # Count consecutive looks at each free partition: strays are only taken after the grace.
        self._free_for = {p: self._free_for.get(p, 0) + 1 for p in range(self.partitions) if p not in holders}
        # Our own view wins over a stale listing: what we renewed is ours.
        holders.update({p: self.worker for p in self.owned})
        todo = plan(self.partitions, self.worker, workers, holders, self._free_for, self.grace)
        for p in todo.release:
            await self._give_up(p, graceful=True)
        for p in todo.acquire:
            lease = await self.leases.acquire(partition_key(self.group, p), self.worker)
            if lease is None:
                continue
            self.owned[p] = lease
            self._free_for.pop(p, None)
            log.info("%s: worker %s owns partition %d (lease revision %d)", self.group, self.worker, p,
                     lease.revision)
            await self.handler.gained(p, lease)

    async def _renew_membership(self) -> None:
        name = worker_key(self.group, self.worker)
        now = self._clock()
        if self._member is not None and not renew_due(self._member.expires_at - self.leases.ttl_s,
                                                       self.leases.ttl_s, now):
            return
        renewed = await self.leases.renew(self._member) if self._member is not None else None
        self._member = renewed or await self.leases.acquire(name, self.worker)

    async def _renew_owned(self) -> None:
        for p, lease in list(self.owned.items()):
            now = self._clock()
            if not lease.valid(now):
                log.error("%s: lease on partition %d expired before it could be renewed", self.group, p)
                await self._give_up(p, graceful=False)
                continue
            if not renew_due(lease.expires_at - self.leases.ttl_s, self.leases.ttl_s, now):
                continue
            try:
                renewed = await self.leases.renew(lease)
            except BusError as exc:
                # Try again next tick; the lease stays usable until its local expiry.
                log.warning("%s: renewing partition %d failed: %s", self.group, p, exc)
                continue
            if renewed is None:
                log.error("%s: lost the lease on partition %d", self.group, p)
                await self._give_up(p, graceful=False)
            else:
                self.owned[p] = renewed

    async def drop(self, partition: int) -> None:
        """The partition's work ended by itself (its owner lost it, or the bus failed): stop holding it.

        Renewing the lease of a partition nobody reads would keep every other worker off it; released, it is
        taken again (by this worker or another) after the usual grace.
        """
        lease = self.owned.pop(partition, None)
        if lease is None:
            return
        try:
            await self.leases.release(lease)
        except BusError as exc:
            log.warning("%s: releasing partition %d failed (it will expire): %s", self.group, partition, exc)
        log.warning("%s: worker %s stopped reading partition %d; released it", self.group, self.worker, partition)

    async def _give_up(self, partition: int, graceful: bool) -> None:
        # Still held while the handler stops: a graceful stop commits, and a commit checks the lease first.
        lease = self.owned.get(partition)
        await self.handler.lost(partition, graceful and lease is not None and lease.valid(self._clock()))
        lease = self.owned.pop(partition, lease)
        if lease is not None and graceful:
            try:
                await self.leases.release(lease)
            except BusError as exc:
                log.warning("%s: releasing partition %d failed (it will expire): %s", self.group, partition, exc)
        log.info("%s: worker %s gave up partition %d", self.group, self.worker, partition)

    async def shutdown(self) -> None:
        """Commit and release every partition, then the membership."""
        for p in list(self.owned):
            await self._give_up(p, graceful=True)
        if self._member is not None:
            try:
                await self.leases.release(self._member)
            except BusError as exc:
                log.warning("%s: releasing membership failed (it will expire): %s", self.group, exc)
            self._member = None
