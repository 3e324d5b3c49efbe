"""Alert notifications exactly once across rules workers: claims that name their sender, delivery marks, takeovers.

The first worker to compute a transition creates its claim (``owner``: that worker, nothing delivered). Each
channel's delivery is recorded on the claim (``done``); once every channel of the worker has delivered it, the
claim is ``sent`` and nobody touches it again. A worker meeting a claim left unsent by a worker whose
membership lease is gone (SIGKILL, lost connection, a restart under a new id) takes it over with a
compare-and-set on its revision and sends it to the channels not yet done; an unsent claim of a live worker is
watched until it is sent or its worker is gone. What a partition claimed but has not seen sent travels in the
partition's snapshot, so its next owner finds it even when the replay starts past the reading that made it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from gulou.bus.base import Bus, BusError, Claim
from gulou.bus.lease import worker_key
from gulou.channels.base import transition_id
from gulou.rules.alerts import AlertTransition

log = logging.getLogger(__name__)
# Sends ``transitions`` to every channel of the worker except those named in the set (already delivered).
Dispatch = Callable[[Sequence[AlertTransition], frozenset[str]], None]
# The newest unsent transitions of one partition kept in its snapshot (a snapshot must fit one message).
UNSENT_LIMIT = 1000
FULL_RECHECK = 10


@dataclass
class _Entry:
    transition: AlertTransition
    partition: int
    claim: Claim


class NotificationLedger:
    """This worker's side of the claims: what it sends, what it watches, and the delivery marks it writes."""

    def __init__(self, bus: Bus, group: str, me: str, channels: Collection[str], dispatch: Dispatch, *,
                 limit: int = 20_000, concurrency: int = 64, recheck_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.bus, self.group, self.me = bus, group, me
        self.channels = frozenset(channels)
        self.dispatch = dispatch
        self.limit, self.recheck_s = limit, recheck_s
        self._clock = clock
        # Claimed by this worker, not yet delivered everywhere; and unsent claims of other live workers.
        self.mine: OrderedDict[str, _Entry] = OrderedDict()
        self.watched: OrderedDict[str, _Entry] = OrderedDict()
        self._marks: dict[str, tuple[AlertTransition, set[str]]] = {}
        self._admitting: set[str] = set()  # keys being claimed right now (the same one twice in a batch)
        self._wake = asyncio.Event()
        self._flushing = asyncio.Lock()
        self._ops = asyncio.Semaphore(concurrency)  # KV round trips in flight at once
        self._alive: set[str] = set()
        self._alive_at = -math.inf
        self._alive_lock = asyncio.Lock()
        self.sent = self.suppressed = self.taken_over = self.forgotten = 0
        self._last_forget_log = 0.0
        self._rounds = 0

    # -- claiming ---------------------------------------------------------------------------------------------
    async def admit(self, partition: int, transitions: Sequence[AlertTransition]) -> None:
        """Claim each transition (concurrently) and dispatch, in order, those this worker now sends."""
        if transitions:
            decisions = await asyncio.gather(*(self._admit(partition, t) for t in transitions))
            self._send(list(zip(transitions, decisions, strict=True)), count_suppressed=True)

    async def _admit(self, partition: int, t: AlertTransition) -> frozenset[str] | None:
        key = transition_id(t)
        if key in self.mine or key in self.watched or key in self._admitting:
            return None
        self._admitting.add(key)
        try:
            async with self._ops:
                # Without channels there is nothing to wait for: the claim is born sent, one write as before.
                stored = await self.bus.claims.put(key, Claim(self.me, sent=not self.channels))
                if stored is not None:
                    if not stored.sent:
                        self._track(self.mine, key, _Entry(t, partition, stored))
                    return frozenset()
                current = await self.bus.claims.get(key)
            return await self._decide(partition, t, key, current, self._clock())
        finally:
            self._admitting.discard(key)

    async def _decide(self, partition: int, t: AlertTransition, key: str, current: Claim | None,
                      seen_at: float) -> frozenset[str] | None:
        """What to do with an existing claim read at ``seen_at``: the channels to skip when sending it, or None."""
        if current is None or current.sent or key in self.mine:
            self.watched.pop(key, None)
            return None
        if current.owner == self.me:
            # Ours but not in hand: a create retried after a timeout that had in fact been stored, or one
            # forgotten beyond the bound. Sending risks a copy, which receivers drop; not sending loses it.
            self.watched.pop(key, None)
            self._track(self.mine, key, _Entry(t, partition, current))
            return current.done
        if await self._alive_now(current.owner, seen_at):
            self._track(self.watched, key, _Entry(t, partition, current))
            return None
        async with self._ops:
            taken = await self.bus.claims.put(key, Claim(self.me, current.done, self.channels <= current.done,
                                                         current.revision))
            if taken is None:
                # Another worker took it over first: it is theirs to send now.
                latest = await self.bus.claims.get(key)
                if latest is not None and not latest.sent and latest.owner != self.me:
                    self._track(self.watched, key, _Entry(t, partition, latest))
                return None
        self.watched.pop(key, None)
        self.taken_over += 1
        log.info("%s: took over %s from %s (gone), already delivered to %s", self.me, key, current.owner,
                 sorted(current.done) or "no channel")
        if taken.sent:
            return None
        self._track(self.mine, key, _Entry(t, partition, taken))
        return current.done

    async def _alive_now(self, worker: str, seen_at: float) -> bool:
        """Whether ``worker`` holds its membership lease, from a listing begun after ``seen_at`` when it looks gone.

        A recent "alive" answers from the listing in hand (that only delays a takeover); "gone" is only
        believed from a listing that started after the claim was read, so a worker that just joined is never
        mistaken for a dead one.
        """
        if worker in self._alive and self._clock() - self._alive_at < self.recheck_s:
            return True
        async with self._alive_lock:
            if self._alive_at < seen_at or self._clock() - self._alive_at >= self.recheck_s:
                started = self._clock()
                held = await self.bus.leases.holders(worker_key(self.group, ""))
                self._alive, self._alive_at = set(held.values()), started
        return worker in self._alive

    def _send(self, decided: list[tuple[AlertTransition, frozenset[str] | None]], count_suppressed: bool) -> None:
        for t, skip in decided:
            if skip is None:
                self.suppressed += count_suppressed
                continue
            self.sent += 1
            self.dispatch([t], skip)

    def _track(self, book: OrderedDict[str, _Entry], key: str, entry: _Entry) -> None:
        book[key] = entry
        book.move_to_end(key)
        while len(book) > self.limit:
            # Bounded memory: a forgotten claim of ours is still marked when delivered (read back first);
            # a forgotten watched one is left to the snapshot and the next replay.
            book.popitem(last=False)
            self.forgotten += 1
            now = self._clock()
            if now - self._last_forget_log > 10:
                self._last_forget_log = now
                log.warning("%s: more than %d notifications in flight; %d forgotten so far", self.me, self.limit,
                            self.forgotten)

    # -- delivery marks -----------------------------------------------------------------------------------------
    def delivered(self, channel: str, transition: AlertTransition) -> None:
        """A channel delivered ``transition``: record it on the claim soon (marks are written in batches)."""
        key = transition_id(transition)
        mark = self._marks.get(key)
        if mark is None:
            self._marks[key] = (transition, {channel})
        else:
            mark[1].add(channel)
        self._wake.set()

    async def flush(self) -> None:
        """Write every delivery mark collected so far (concurrently, one write per transition)."""
        async with self._flushing:
            while self._marks:
                marks, self._marks = self._marks, {}
                await asyncio.gather(*(self._mark(key, chans) for key, (_t, chans) in marks.items()))

    async def _mark(self, key: str, channels: set[str]) -> None:
        entry = self.mine.get(key)
        async with self._ops:
            claim = entry.claim if entry is not None else await self.bus.claims.get(key)
            for _ in range(3):
                if claim is None or claim.owner != self.me or claim.sent:
                    self.mine.pop(key, None)  # taken over by another worker (this one looked gone), or done
                    return
                done = claim.done | channels
                stored = await self.bus.claims.put(key, Claim(self.me, done, self.channels <= done, claim.revision))
                if stored is not None:
                    if stored.sent:
                        self.mine.pop(key, None)
                    elif entry is not None:
                        entry.claim = stored
                    return
                claim = await self.bus.claims.get(key)  # our copy was stale: read it back and try again
        log.warning("%s: could not record the delivery of %s to %s", self.me, key, sorted(channels))

    # -- watching -----------------------------------------------------------------------------------------------
    async def recheck(self) -> None:
        """Look again at watched claims: drop the sent ones, take over those whose worker is gone."""
        if not self.watched:
            return
        started = self._clock()
        held = await self.bus.leases.holders(worker_key(self.group, ""))
        self._alive, self._alive_at = set(held.values()), started
        # A live worker's claims are read back only every FULL_RECHECK rounds (to forget the sent ones):
        # a long channel outage elsewhere must not cost a read per watched claim every few seconds.
        self._rounds += 1
        full = self._rounds % FULL_RECHECK == 0
        entries = [(key, e) for key, e in self.watched.items() if full or e.claim.owner not in self._alive]
        claims = await asyncio.gather(*(self._get(key) for key, _e in entries))
        seen_at = self._clock()
        decisions = await asyncio.gather(*(self._decide(e.partition, e.transition, key, c, seen_at)
                                           for (key, e), c in zip(entries, claims, strict=True)))
        self._send([(e.transition, d) for (_k, e), d in zip(entries, decisions, strict=True)],
                   count_suppressed=False)

    async def restore(self, partition: int, unsent: Sequence[dict[str, Any]]) -> None:
        """Take up the transitions a partition's snapshot lists as claimed but not seen sent."""
        found: list[tuple[str, AlertTransition]] = []
        for payload in unsent:
            try:
                t = AlertTransition.from_json(payload)
            except (ValueError, KeyError, TypeError) as exc:
                log.error("partition %d: unusable unsent notification in the snapshot (%s)", partition, exc)
                continue
            key = transition_id(t)
            if key not in self.mine and key not in self.watched:
                found.append((key, t))
        claims = await asyncio.gather(*(self._get(key) for key, _t in found))
        seen_at = self._clock()
        decisions = await asyncio.gather(*(self._decide(partition, t, key, c, seen_at)
                                           for (key, t), c in zip(found, claims, strict=True)))
        self._send([(t, d) for (_k, t), d in zip(found, decisions, strict=True)], count_suppressed=False)

    async def _get(self, key: str) -> Claim | None:
        async with self._ops:
            return await self.bus.claims.get(key)

    def unsent(self, partition: int) -> list[dict[str, Any]]:
        """The partition's claimed transitions not yet seen sent (newest ``UNSENT_LIMIT``), for its snapshot."""
        out = [e.transition.to_json() for book in (self.mine, self.watched) for e in book.values()
               if e.partition == partition]
        if len(out) > UNSENT_LIMIT:
            log.warning("partition %d: %d notifications unsent; the snapshot keeps the newest %d", partition,
                        len(out), UNSENT_LIMIT)
        return out[-UNSENT_LIMIT:]

    # -- running ------------------------------------------------------------------------------------------------
    async def run(self) -> None:
        """Write delivery marks as they come and look at watched claims every ``recheck_s``, until cancelled."""
        next_check = self._clock() + self.recheck_s
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, next_check - self._clock()))
            self._wake.clear()
            try:
                await self.flush()
                if self._clock() >= next_check:
                    await self.recheck()
                    next_check = self._clock() + self.recheck_s
            except BusError as exc:
                log.warning("%s: notification claims: %s", self.me, exc)

    async def settle(self, timeout_s: float) -> bool:
        """Wait until everything this worker claimed is marked sent (or ``timeout_s``); True when it is."""
        deadline = self._clock() + timeout_s
        while True:
            await self.flush()
            if not self.mine:
                return True
            if self._clock() >= deadline:
                log.warning("%s: %d notification(s) still unsent at the stop", self.me, len(self.mine))
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.1)
