"""The rules engine on the bus: one engine per owned partition, restored from its snapshot, replaying the stream.

Each partition's state (all of a site's devices: the partition key is the site) lives in its own engine.
A commit saves the engine's snapshot with the stream sequence it covers, then acknowledges the messages up
to there; only a worker whose lease is still valid commits. Alert transitions have deterministic ids; the
worker that claims an id first sends it, so the replay after a takeover or a restart notifies nobody twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from gulou.bus.base import Bus, BusError, Consumer, Delivery, Lease, ReaderClosed, SnapshotConflict
from gulou.bus.codec import decode
from gulou.bus.keeper import PartitionKeeper
from gulou.bus.lease import partition_key
from gulou.devices.contract import Reading, StatusUpdate
from gulou.devices.registry import Registry
from gulou.rules.alerts import AlertTransition
from gulou.rules.engine import Engine, Item
from gulou.rules.model import AnyRule
from gulou.timeutil import from_ms, to_ms
from gulou.tsdb.records import Point, StatusEvent

log = logging.getLogger(__name__)
GROUP = "rules"
Dispatch = Callable[[Sequence[AlertTransition]], None]


def transition_id(t: AlertTransition) -> str:
    """The same for the same change of the same alert, whichever worker computes it."""
    a = t.alert
    at = {"firing": a.first_seen, "renotify": a.notified_at, "resolved": a.resolved_at}[t.event] or a.last_seen
    return f"{a.alert_id}:{t.event}:{to_ms(at)}"


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
    """Owns a share of the partitions and runs an engine for each; transitions go to ``dispatch``."""

    def __init__(self, bus: Bus, registry: Registry, rules: Sequence[AnyRule], dispatch: Dispatch, worker: str, *,
                 lateness_s: float = 600.0, renotify_s: float | None = 3600.0, event_clock: bool = False,
                 commit_every: int = 5000, commit_s: float = 5.0, tick_s: float = 5.0) -> None:
        self.bus, self.registry, self.rules, self.dispatch = bus, registry, rules, dispatch
        self.worker = worker
        self.lateness_s, self.renotify_s, self.event_clock = lateness_s, renotify_s, event_clock
        self.commit_every, self.commit_s, self.tick_s = commit_every, commit_s, tick_s
        self.keeper = PartitionKeeper(bus.leases, GROUP, bus.partitions, worker, self)
        self.owned: dict[int, _Owned] = {}
        self.evaluated = 0
        self.sent = 0
        self.suppressed = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Keep partitions until ``stop``; then commit and hand every one back."""
        await self.keeper.run(stop)

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
        p, key = owned.partition, partition_key(GROUP, owned.partition)
        engine = Engine(self.rules, self.registry, lateness_s=self.lateness_s, default_renotify_s=self.renotify_s)
        snap = await self.bus.snapshots.load(key)
        after, revision = (snap.seq, snap.revision) if snap is not None else (0, 0)
        if snap is not None:
            try:
                engine.restore(json.loads(snap.data))
            except (ValueError, KeyError, TypeError) as exc:
                log.error("partition %d: unusable snapshot (%s); starting empty from sequence %d", p, exc, after)
        reader = await self.bus.reader(GROUP, p, after, f"r{owned.lease.revision}")
        log.info("partition %d: resumed at sequence %d with %d active alert(s)", p, after,
                 len(engine.book.active))
        pending: list[Delivery] = []
        newest_ms: int | None = None
        last_commit = last_tick = time.monotonic()
        try:
            while not owned.stop.is_set():
                batch = await reader.fetch(500, 0.5)
                for d in batch:
                    newest_ms = await self._evaluate(engine, d, newest_ms)
                pending.extend(batch)
                now = time.monotonic()
                # On the event clock a partition without a reading since it was resumed has no time yet.
                if now - last_tick >= self.tick_s and not (self.event_clock and newest_ms is None):
                    await self._send(engine.tick(self._now(newest_ms, engine)))
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

    async def _evaluate(self, engine: Engine, d: Delivery, newest_ms: int | None) -> int | None:
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
        await self._send(evaluation.transitions)
        return max(newest_ms or evaluation.ts_ms, evaluation.ts_ms)

    def _now(self, newest_ms: int | None, engine: Engine) -> datetime:
        if self.event_clock and newest_ms is not None:
            return from_ms(newest_ms - engine.lateness_ms)
        return datetime.now(UTC)

    async def _send(self, transitions: Sequence[AlertTransition]) -> None:
        fresh = [t for t in transitions if await self.bus.claim(transition_id(t))]
        self.suppressed += len(transitions) - len(fresh)
        if fresh:
            self.sent += len(fresh)
            self.dispatch(fresh)

    async def _commit(self, owned: _Owned, engine: Engine, reader: Consumer, pending: list[Delivery],
                      revision: int) -> int:
        if self.keeper.lease(owned.partition) is None:
            raise BusError(f"lease on partition {owned.partition} no longer valid")
        data = json.dumps(engine.snapshot(), separators=(",", ":")).encode()
        snap = await self.bus.snapshots.save(partition_key(GROUP, owned.partition), pending[-1].seq, data, revision)
        await reader.ack(pending)
        return snap.revision
