"""The in-process bus: the same semantics as the JetStream one, inside one process, when no bus is configured.

Memory is not durable, so by default a publish completes only once every shared group (the storage writers)
has acknowledged the messages: the collector still acknowledges MQTT only after the store committed, as it
always has on a single machine. ``wait_for=()`` gives the stream's semantics (done once appended).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gulou.bus.base import (
    Bus,
    BusFull,
    BusStats,
    BusUnavailable,
    Claim,
    Claims,
    Consumer,
    Delivery,
    Envelope,
    GroupStats,
    Lease,
    Leases,
    PublishResult,
    ReaderClosed,
    Snapshot,
    SnapshotConflict,
    Snapshots,
    Topology,
)

if TYPE_CHECKING:
    from gulou.settings import Settings

Clock = Callable[[], float]


@dataclass
class _Entry:
    seq: int
    env: Envelope
    done: asyncio.Future[None]
    waiting: set[str]  # shared groups that have not acknowledged it yet


@dataclass
class _Shared:
    ready: list[int] = field(default_factory=list)
    head: int = 0
    inflight: dict[int, tuple[float, int]] = field(default_factory=dict)  # seq -> (redeliver at, attempts)


@dataclass
class _Lane:
    """One partition of one partitioned group: its sequence list, ack floor and current reader."""

    seqs: list[int] = field(default_factory=list)
    head: int = 0
    floor: int = 0
    token: str | None = None


class InProcessBus(Bus):
    """A bounded in-memory log with consumer groups, partition readers, leases and snapshots."""

    def __init__(self, topology: Topology | None = None, *, capacity: int = 200_000, ack_wait_s: float = 30.0,
                 dedupe_window_s: float = 120.0, lease_ttl_s: float = 10.0, wait_for: Sequence[str] | None = None,
                 clock: Clock = time.monotonic) -> None:
        self.topology = topology or Topology()
        self.wait_for = set(self.topology.groups if wait_for is None else wait_for)
        self.capacity, self.ack_wait_s, self.dedupe_window_s = capacity, ack_wait_s, dedupe_window_s
        self._clock = clock
        self._log: dict[int, _Entry] = {}
        self._bytes = 0
        self._next_seq = 1
        self._ids: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._shared = {g: _Shared() for g in self.topology.groups}
        self._lanes = {(g, p): _Lane() for g in self.topology.partitioned for p in range(self.topology.partitions)}
        self._changed: asyncio.Condition | None = None
        self._leases = MemoryLeases(lease_ttl_s, clock)
        self._snapshots = MemorySnapshots()
        self._claims = MemoryClaims()

    @classmethod
    def from_settings(cls, settings: Settings, topology: Topology) -> InProcessBus | None:
        """The in-process bus when no bus URL is configured."""
        if settings.bus.urls():
            return None
        return cls(topology, lease_ttl_s=settings.bus.lease_ttl_s)

    @property
    def _cond(self) -> asyncio.Condition:
        # Made lazily so the bus can be built outside the event loop that will run it.
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    async def start(self) -> None:
        """Nothing to provision in memory."""

    async def close(self) -> None:
        """Wake every waiter so they see the end."""
        async with self._cond:
            self._cond.notify_all()

    # -- publish ------------------------------------------------------------------------------------------
    async def publish(self, batch: Sequence[Envelope], timeout_s: float = 30.0) -> PublishResult:
        """Append the batch (duplicates by id skipped) and wait until the ``wait_for`` groups acknowledged it."""
        # Waiting runs on the loop's clock; ``self._clock`` only ages ids, acks and leases.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        waits: list[asyncio.Future[None]] = []
        stored = duplicates = 0
        async with self._cond:
            for env in batch:
                self._forget_old_ids()
                known = self._ids.get(env.msg_id)
                if known is not None:
                    duplicates += 1
                    entry = self._log.get(known[0])
                    if entry is not None:
                        waits.append(entry.done)
                    continue
                while len(self._log) >= self.capacity:
                    left = deadline - loop.time()
                    if left <= 0:
                        raise BusFull(f"in-process bus holds {len(self._log)} messages (capacity {self.capacity})")
                    try:
                        await asyncio.wait_for(self._cond.wait(), left)
                    except TimeoutError:
                        continue
                waits.append(self._append(env))
                stored += 1
            self._cond.notify_all()
        pending = [w for w in waits if not w.done()]
        if pending:
            _done, late = await asyncio.wait(pending, timeout=max(0.0, deadline - loop.time()))
            if late:
                raise BusUnavailable(f"{len(late)} message(s) not acknowledged by {sorted(self.wait_for)} in time")
        return PublishResult(stored, duplicates)

    def _append(self, env: Envelope) -> asyncio.Future[None]:
        seq = self._next_seq
        self._next_seq += 1
        entry = _Entry(seq, env, asyncio.get_running_loop().create_future(), set(self._shared))
        self._log[seq] = entry
        self._bytes += len(env.body)
        self._ids[env.msg_id] = (seq, self._clock())
        for group in self._shared.values():
            group.ready.append(seq)
        if env.partition is not None and env.kind != "dead":
            for name in self.topology.partitioned:
                self._lanes[(name, env.partition)].seqs.append(seq)
        self._settle(entry)
        self._maybe_drop(entry)
        return entry.done

    def _settle(self, entry: _Entry) -> None:
        if not entry.done.done() and not entry.waiting & self.wait_for:
            entry.done.set_result(None)

    def _forget_old_ids(self) -> None:
        horizon = self._clock() - self.dedupe_window_s
        while self._ids:
            _msg_id, (_seq, at) = next(iter(self._ids.items()))
            if at >= horizon:
                break
            self._ids.popitem(last=False)

    def _interested(self, entry: _Entry) -> bool:
        if entry.waiting:
            return True
        p = entry.env.partition
        if p is None or entry.env.kind == "dead":
            return False
        return any(self._lanes[(name, p)].floor < entry.seq for name in self.topology.partitioned)

    def _maybe_drop(self, entry: _Entry) -> None:
        # Interest retention: a message leaves once every group is done with it.
        if not self._interested(entry) and self._log.pop(entry.seq, None) is not None:
            self._bytes -= len(entry.env.body)

    # -- shared groups -----------------------------------------------------------------------------------
    def _take(self, name: str, max_messages: int) -> list[Delivery]:
        group = self._shared[name]
        now = self._clock()
        out: list[Delivery] = []
        for seq in sorted(s for s, (due, _n) in group.inflight.items() if due <= now)[:max_messages]:
            entry = self._log.get(seq)
            if entry is None or name not in entry.waiting:
                group.inflight.pop(seq, None)
                continue
            attempts = group.inflight[seq][1] + 1
            group.inflight[seq] = (now + self.ack_wait_s, attempts)
            out.append(_delivery(entry, attempts))
        while len(out) < max_messages and group.head < len(group.ready):
            seq = group.ready[group.head]
            group.head += 1
            entry = self._log.get(seq)
            if entry is not None:
                group.inflight[seq] = (now + self.ack_wait_s, 1)
                out.append(_delivery(entry, 1))
        if group.head > 4096 and group.head * 2 > len(group.ready):
            del group.ready[:group.head]
            group.head = 0
        return out

    def _ack_shared(self, name: str, deliveries: Sequence[Delivery]) -> None:
        group = self._shared[name]
        for d in deliveries:
            group.inflight.pop(d.seq, None)
            entry = self._log.get(d.seq)
            if entry is None:
                continue
            entry.waiting.discard(name)
            self._settle(entry)
            self._maybe_drop(entry)

    def _progress_shared(self, name: str, deliveries: Sequence[Delivery]) -> None:
        group = self._shared[name]
        due = self._clock() + self.ack_wait_s
        for d in deliveries:
            if d.seq in group.inflight:
                group.inflight[d.seq] = (due, group.inflight[d.seq][1])

    async def consumer(self, group: str) -> Consumer:
        """A member of a shared group."""
        if group not in self._shared:
            raise ValueError(f"unknown group {group!r}; the topology has {self.topology.groups}")
        return _MemoryConsumer(self, group, None, "")

    # -- partition readers --------------------------------------------------------------------------------
    async def reader(self, group: str, partition: int, after_seq: int, token: str) -> Consumer:
        """The reader of one partition from after ``after_seq``; older readers of it stop."""
        lane = self._lanes.get((group, partition))
        if lane is None:
            raise ValueError(f"no partition {partition} of group {group!r}")
        lane.token = token
        start = max(after_seq, lane.floor)
        return _MemoryConsumer(self, group, partition, token, start)

    def _read_lane(self, group: str, partition: int, token: str, after: int, max_messages: int) -> list[Delivery]:
        lane = self._lanes[(group, partition)]
        if lane.token != token:
            raise ReaderClosed(f"partition {partition} of {group!r} has a newer reader")
        i = bisect_right(lane.seqs, after, lo=lane.head)
        out = []
        for seq in lane.seqs[i:i + max_messages]:
            entry = self._log.get(seq)
            if entry is not None:
                out.append(_delivery(entry, 1))
        return out

    def _ack_lane(self, group: str, partition: int, token: str, upto: int) -> None:
        lane = self._lanes[(group, partition)]
        if lane.token != token:
            raise ReaderClosed(f"partition {partition} of {group!r} has a newer reader")
        lane.floor = max(lane.floor, upto)
        while lane.head < len(lane.seqs) and lane.seqs[lane.head] <= lane.floor:
            entry = self._log.get(lane.seqs[lane.head])
            lane.head += 1
            if entry is not None:
                self._maybe_drop(entry)
        if lane.head > 4096 and lane.head * 2 > len(lane.seqs):
            del lane.seqs[:lane.head]
            lane.head = 0

    async def _wait(self, timeout_s: float) -> None:
        async with self._cond:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._cond.wait(), timeout_s)

    async def _notify(self) -> None:
        async with self._cond:
            self._cond.notify_all()

    # -- the rest -------------------------------------------------------------------------------------------
    @property
    def leases(self) -> Leases:
        """In-memory leases."""
        return self._leases

    @property
    def snapshots(self) -> Snapshots:
        """In-memory snapshots."""
        return self._snapshots

    @property
    def claims(self) -> Claims:
        """In-memory claims (kept for the life of the process, the oldest dropped beyond a bound)."""
        return self._claims

    async def stats(self) -> BusStats:
        """Log size and each group's backlog."""
        groups = {name: GroupStats(len(g.ready) - g.head, len(g.inflight)) for name, g in self._shared.items()}
        for name in self.topology.partitioned:
            lanes = [self._lanes[(name, p)] for p in range(self.topology.partitions)]
            groups[name] = GroupStats(sum(len(lane.seqs) - lane.head for lane in lanes), 0)
        return BusStats("memory", len(self._log), self._bytes, None, None, self.topology.partitions, 1, groups)


def _delivery(entry: _Entry, attempt: int) -> Delivery:
    env = entry.env
    return Delivery(env.kind, env.partition, env.msg_id, env.body, entry.seq, attempt)


class _MemoryConsumer(Consumer):
    """A shared-group member (partition None) or a partition reader of the in-process bus."""

    def __init__(self, bus: InProcessBus, group: str, partition: int | None, token: str, after: int = 0) -> None:
        self.bus, self.group, self.partition, self.token = bus, group, partition, token
        self._last = after
        self._closed = False

    def _take(self, max_messages: int) -> list[Delivery]:
        if self.partition is None:
            return self.bus._take(self.group, max_messages)
        out = self.bus._read_lane(self.group, self.partition, self.token, self._last, max_messages)
        if out:
            self._last = out[-1].seq
        return out

    async def fetch(self, max_messages: int = 500, timeout_s: float = 1.0) -> list[Delivery]:
        """What is ready now, else wait up to ``timeout_s`` for something to arrive or fall due."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not self._closed:
            out = self._take(max_messages)
            left = deadline - loop.time()
            if out or left <= 0:
                return out
            # Redeliveries fall due without a notification: look again at least every 50 ms.
            await self.bus._wait(min(left, 0.05))
        return []

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Shared group: each one; partition reader: everything up to the last."""
        if not deliveries:
            return
        if self.partition is None:
            self.bus._ack_shared(self.group, deliveries)
        else:
            self.bus._ack_lane(self.group, self.partition, self.token, max(d.seq for d in deliveries))
        await self.bus._notify()

    async def progress(self, deliveries: Sequence[Delivery]) -> None:
        """Push the redelivery of these back by the ack wait."""
        if self.partition is None:
            self.bus._progress_shared(self.group, deliveries)

    async def close(self) -> None:
        """Stop fetching; unacknowledged deliveries fall due again after the ack wait."""
        self._closed = True


class MemoryLeases(Leases):
    """Leases in a dict, expiring on the given monotonic clock."""

    def __init__(self, ttl_s: float, clock: Clock = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._held: dict[str, Lease] = {}
        self._revision = 0

    def _live(self, name: str) -> Lease | None:
        lease = self._held.get(name)
        if lease is not None and not lease.valid(self._clock()):
            del self._held[name]
            return None
        return lease

    def _write(self, name: str, owner: str) -> Lease:
        self._revision += 1
        lease = Lease(name, owner, self._revision, self._clock() + self.ttl_s)
        self._held[name] = lease
        return lease

    async def acquire(self, name: str, owner: str) -> Lease | None:
        """Take the lease if it is free or expired."""
        return None if self._live(name) is not None else self._write(name, owner)

    async def renew(self, lease: Lease) -> Lease | None:
        """Extend it if it is still ours and not expired."""
        current = self._live(lease.name)
        if current is None or current.revision != lease.revision:
            return None
        return self._write(lease.name, lease.owner)

    async def release(self, lease: Lease) -> None:
        """Drop it if it is still ours."""
        current = self._live(lease.name)
        if current is not None and current.revision == lease.revision:
            del self._held[lease.name]

    async def holders(self, prefix: str) -> dict[str, str]:
        """Owners of the live leases under ``prefix``."""
        return {name: lease.owner for name in list(self._held) if name.startswith(prefix)
                and (lease := self._live(name)) is not None}


class MemorySnapshots(Snapshots):
    """Snapshots in a dict with compare-and-set revisions."""

    def __init__(self) -> None:
        self._saved: dict[str, Snapshot] = {}
        self._revision = 0

    async def load(self, key: str) -> Snapshot | None:
        """The latest snapshot under ``key``."""
        return self._saved.get(key)

    async def save(self, key: str, seq: int, data: bytes, expected_revision: int) -> Snapshot:
        """Replace it if nobody wrote since ``expected_revision``."""
        current = self._saved.get(key)
        if (current.revision if current else 0) != expected_revision:
            raise SnapshotConflict(f"snapshot {key!r} is at revision {current.revision if current else 0}, "
                                   f"not {expected_revision}")
        self._revision += 1
        snap = Snapshot(seq, data, self._revision)
        self._saved[key] = snap
        return snap


class MemoryClaims(Claims):
    """Claims in a dict with compare-and-set revisions; beyond ``limit`` keys the oldest are forgotten."""

    def __init__(self, limit: int = 1_000_000) -> None:
        self.limit = limit
        self._claims: OrderedDict[str, Claim] = OrderedDict()
        self._revision = 0

    async def get(self, key: str) -> Claim | None:
        """The claim on ``key``."""
        return self._claims.get(key)

    async def put(self, key: str, claim: Claim) -> Claim | None:
        """Store it if ``key`` is still at ``claim.revision`` (0: absent)."""
        current = self._claims.get(key)
        if (current.revision if current else 0) != claim.revision:
            return None
        self._revision += 1
        stored = Claim(claim.owner, frozenset(claim.done), claim.sent, self._revision)
        self._claims[key] = stored
        self._claims.move_to_end(key)
        while len(self._claims) > self.limit:
            self._claims.popitem(last=False)
        return stored
