"""The rules engine on the bus: one engine per owned partition, restored from its snapshot, replaying the stream.

Each partition's state (all of a site's devices: the partition key is the site) lives in its own engine.
A commit saves the engine's snapshot with the stream sequence it covers (and the partition's notifications
claimed but not yet seen sent), then acknowledges the messages up to there; only a worker whose lease is
still valid commits. Alert transitions have deterministic ids; the worker that claims an id first sends it
and marks it sent once its channels delivered it, and a claim left unsent by a worker that is gone is taken
over (``gulou.bus.notify``): the replay after a takeover or a restart neither loses a notification nor sends
it twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gulou.backoff import Backoff
from gulou.bus.base import (
    Bus,
    BusError,
    Consumer,
    Delivery,
    Lease,
    ReaderClosed,
    Snapshot,
    SnapshotConflict,
)
from gulou.bus.codec import decode
from gulou.bus.keeper import PartitionKeeper
from gulou.bus.lease import partition_key
from gulou.bus.notify import Dispatch, NotificationLedger
from gulou.channels.base import transition_id
from gulou.devices.contract import Reading, StatusUpdate
from gulou.devices.registry import Registry
from gulou.rules.alerts import AlertTransition
from gulou.rules.engine import Engine, Item
from gulou.rules.model import AnyRule
from gulou.timeutil import from_ms
from gulou.tsdb.records import Point, StatusEvent

log = logging.getLogger(__name__)
GROUP = "rules"
__all__ = ["GROUP", "BusRulesWorker", "Dispatch", "to_item", "transition_id"]


def to_item(record: Point | StatusEvent, registry: Registry) -> Item | None:
    """The engine's input for a record, or None for a device no longer registered."""
    device = registry.get(record.device_id)
    if device is None:
        return None
    if isinstance(record, Point):
        return Reading(device=device, ts=from_ms(record.ts_ms), seq=record.seq, values=dict(record.values))
    return StatusUpdate(device=device, ts=from_ms(record.ts_ms), online=record.online, battery=record.battery,
                        rssi=record.rssi)


@dataclass
class _Owned:
    """One partition this worker runs."""

    partition: int
    lease: Lease
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    graceful: bool = True
    task: asyncio.Task[None] | None = None


class BusRulesWorker:
    """Owns a share of the partitions and runs an engine for each; transitions go to ``dispatch``.

    ``channels`` names the channels ``dispatch`` delivers to; each reports its deliveries to ``delivered``.
    Without channels a transition counts as sent once dispatched.
    """

    def __init__(self, bus: Bus, registry: Registry, rules: Sequence[AnyRule], dispatch: Dispatch, worker: str, *,
                 channels: Sequence[str] = (), lateness_s: float = 600.0, renotify_s: float | None = 3600.0,
                 event_clock: bool = False, commit_every: int = 5000, commit_s: float = 5.0, tick_s: float = 5.0,
                 settle_s: float = 10.0) -> None:
        self.bus, self.registry, self.rules, self.dispatch = bus, registry, rules, dispatch
        self.worker = worker
        self.lateness_s, self.renotify_s, self.event_clock = lateness_s, renotify_s, event_clock
        self.commit_every, self.commit_s, self.tick_s, self.settle_s = commit_every, commit_s, tick_s, settle_s
        self.keeper = PartitionKeeper(bus.leases, GROUP, bus.partitions, worker, self)
        self.ledger = NotificationLedger(bus, GROUP, worker, channels, dispatch, recheck_s=self.keeper.tick_s)
        self.owned: dict[int, _Owned] = {}
        self.evaluated = 0

    @property
    def sent(self) -> int:
        """Transitions this worker dispatched (claimed first, or taken over from a worker that is gone)."""
        return self.ledger.sent

    @property
    def suppressed(self) -> int:
        """Transitions met again (replays) that another worker, or this one, sends or has sent."""
        return self.ledger.suppressed

    def delivered(self, channel: str, transition: AlertTransition) -> None:
        """``channel`` delivered ``transition`` (the rules service's delivery listener)."""
        self.ledger.delivered(channel, transition)

    async def run(self, stop: asyncio.Event) -> None:
        """Keep partitions until ``stop``; let what is in flight be delivered, then commit and hand every one back."""
        marks = asyncio.create_task(self.ledger.run(), name="rules-claims")
        keeper_stop = asyncio.Event()
        keeper = asyncio.create_task(self.keeper.run(keeper_stop), name="rules-keeper")
        stopped = asyncio.create_task(stop.wait(), name="rules-stop")
        try:
            await asyncio.wait({keeper, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not keeper.done():
                # Marked sent while this worker still holds its membership: nobody takes these over meanwhile.
                await self._quietly("settling the notification claims", self.ledger.settle(self.settle_s))
            keeper_stop.set()
            await keeper
            await self._quietly("writing the last delivery marks", self.ledger.flush())
        finally:
            keeper_stop.set()
            for task in (stopped, keeper, marks):
                task.cancel()
            await asyncio.gather(stopped, keeper, marks, return_exceptions=True)

    async def _quietly(self, what: str, step: Awaitable[object]) -> None:
        """A stop step that needs the bus: if the bus fails now, the claims stay unsent and are taken over later."""
        try:
            await step
        except BusError as exc:
            log.warning("%s: %s failed at the stop (%s); unsent notifications go to the next owner", self.worker,
                        what, exc)

    # -- the keeper's callbacks ------------------------------------------------------------------------------
    async def gained(self, partition: int, lease: Lease) -> None:
        """Start the partition's engine as a task."""
        owned = _Owned(partition, lease)
        owned.task = asyncio.create_task(self._own(owned), name=f"rules-p{partition}")
        self.owned[partition] = owned

    async def lost(self, partition: int, graceful: bool) -> None:
        """Stop the partition's engine; commit first only when the lease is still ours."""
        owned = self.owned.pop(partition, None)
        if owned is None:
            return
        owned.graceful = graceful
        owned.stop.set()
        if owned.task is not None:
            await asyncio.gather(owned.task, return_exceptions=True)

    # -- one partition ---------------------------------------------------------------------------------------
    async def _own(self, owned: _Owned) -> None:
        try:
            await self._run_partition(owned)
        finally:
            if not owned.stop.is_set() and self.owned.get(owned.partition) is owned:
                # Ended by itself (taken over, or the bus failed): let the keeper stop renewing a lease
                # nobody reads under, so the partition is taken again.
                self.owned.pop(owned.partition, None)
                await self.keeper.drop(owned.partition)

    async def _open(self, owned: _Owned) -> tuple[Snapshot | None, Consumer] | None:
        """The partition's snapshot and a reader after it, retried while the bus is unavailable."""
        key, backoff = partition_key(GROUP, owned.partition), Backoff(0.5, 10.0)
        while not owned.stop.is_set():
            try:
                snap = await self.bus.snapshots.load(key)
                reader = await self.bus.reader(GROUP, owned.partition, snap.seq if snap is not None else 0,
                                               f"r{owned.lease.revision}")
                return snap, reader
            except BusError as exc:
                wait = backoff.next()
                log.warning("partition %d: cannot start reading (%s); retrying in %.1f s", owned.partition, exc, wait)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(owned.stop.wait(), wait)
        return None

    async def _run_partition(self, owned: _Owned) -> None:
        p = owned.partition
        engine = Engine(self.rules, self.registry, lateness_s=self.lateness_s, default_renotify_s=self.renotify_s)
        opened = await self._open(owned)
        if opened is None:
            return
        snap, reader = opened
        after, revision = (snap.seq, snap.revision) if snap is not None else (0, 0)
        unsent: list[dict[str, Any]] = []
        if snap is not None:
            try:
                state = json.loads(snap.data)
                if isinstance(state, dict) and "engine" in state:
                    state, unsent = state["engine"], list(state.get("unsent") or [])
                engine.restore(state)
            except (ValueError, KeyError, TypeError) as exc:
                log.error("partition %d: unusable snapshot (%s); starting empty from sequence %d", p, exc, after)
        log.info("partition %d: resumed at sequence %d with %d active alert(s), %d notification(s) unsent", p,
                 after, len(engine.book.active), len(unsent))
        pending: list[Delivery] = []
        newest_ms: int | None = None
        last_commit = last_tick = time.monotonic()
        try:
            await self.ledger.restore(p, unsent)
            while not owned.stop.is_set():
                batch = await reader.fetch(500, 0.5)
                transitions: list[AlertTransition] = []
                for d in batch:
                    newest_ms = self._evaluate(engine, d, newest_ms, transitions)
                # Claimed per batch: the claims' round trips overlap instead of adding up.
                await self.ledger.admit(p, transitions)
                pending.extend(batch)
                now = time.monotonic()
                # On the event clock a partition without a reading since it was resumed has no time yet.
                if now - last_tick >= self.tick_s and not (self.event_clock and newest_ms is None):
                    await self.ledger.admit(p, engine.tick(self._now(newest_ms, engine)))
                    last_tick = now
                if pending and (len(pending) >= self.commit_every or now - last_commit >= self.commit_s):
                    revision = await self._commit(owned, engine, reader, pending, revision)
                    pending, last_commit = [], now
            if owned.graceful and pending and self.keeper.lease(p) is not None:
                await self._commit(owned, engine, reader, pending, revision)
        except (ReaderClosed, SnapshotConflict) as exc:
            log.warning("partition %d: another worker took over (%s); stopping", p, exc)
        except BusError as exc:
            log.error("partition %d: %s; stopping without committing", p, exc)
        finally:
            await reader.close()

    def _evaluate(self, engine: Engine, d: Delivery, newest_ms: int | None,
                  out: list[AlertTransition]) -> int | None:
        if d.kind == "dead":
            return newest_ms
        try:
            record = decode(d)
        except ValueError as exc:
            log.error("%s", exc)
            return newest_ms
        if not isinstance(record, Point | StatusEvent):
            return newest_ms
        item = to_item(record, self.registry)
        if item is None:
            return newest_ms
        evaluation = engine.evaluate(item)
        self.evaluated += 1
        out.extend(evaluation.transitions)
        return max(newest_ms or evaluation.ts_ms, evaluation.ts_ms)

    def _now(self, newest_ms: int | None, engine: Engine) -> datetime:
        if self.event_clock and newest_ms is not None:
            return from_ms(newest_ms - engine.lateness_ms)
        return datetime.now(UTC)

    async def _commit(self, owned: _Owned, engine: Engine, reader: Consumer, pending: list[Delivery],
                      revision: int) -> int:
        if self.keeper.lease(owned.partition) is None:
            raise BusError(f"lease on partition {owned.partition} no longer valid")
        state = {"engine": engine.snapshot(), "unsent": self.ledger.unsent(owned.partition)}
        data = json.dumps(state, separators=(",", ":")).encode()
        snap = await self.bus.snapshots.save(partition_key(GROUP, owned.partition), pending[-1].seq, data, revision)
        await reader.ack(pending)
        return snap.revision
