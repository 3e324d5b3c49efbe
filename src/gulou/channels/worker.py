"""One delivery target's bounded queue, retries with jittered backoff, and redelivery from its outbox."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from gulou.backoff import Backoff
from gulou.channels.outbox import Outbox

log = logging.getLogger(__name__)
T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)


class Target(Protocol[T_contra]):
    """What a worker delivers to: an alert channel, or a writer of derived series."""

    name: str

    async def send(self, item: T_contra) -> None:
        """Deliver one item or raise."""


class ChannelWorker(Generic[T]):
    """Queues items without waiting; a failed send is retried, then kept in the outbox and redelivered later."""

    def __init__(self, channel: Target[T], outbox: Outbox[T], *, queue_size: int = 1000, attempts: int = 4,
                 backoff_s: float = 0.5, backoff_cap_s: float = 30.0, redeliver_s: float = 30.0,
                 describe: Callable[[T], str] = str) -> None:
        self.channel = channel
        self.outbox = outbox
        self.queue: asyncio.Queue[T] = asyncio.Queue(maxsize=queue_size)
        self.attempts, self.backoff_s, self.backoff_cap_s = attempts, backoff_s, backoff_cap_s
        self.redeliver_s = redeliver_s
        self.describe = describe
        self.stats = {"delivered": 0, "retries": 0, "kept": 0, "overflow": 0, "redelivered": 0}
        # Told (channel name, item) after each successful send: bus workers mark notifications sent with it.
        self.on_delivered: Callable[[str, T], None] | None = None

    def new_backoff(self) -> Backoff:
        """The delays between the attempts at one item: jittered so retries of many items spread out."""
        return Backoff(self.backoff_s, self.backoff_cap_s)

    def offer(self, item: T) -> None:
        """Queue without waiting; when the queue is full the item goes to the outbox instead."""
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.stats["overflow"] += 1
            self.outbox.keep(self.channel.name, item, 0, "queue full")

    def spill(self) -> int:
        """Move what is still queued to the outbox (on the way out), so a stop loses nothing; returns how many."""
        moved = 0
        while not self.queue.empty():
            self.outbox.keep(self.channel.name, self.queue.get_nowait(), 0, "stopped before delivery")
            moved += 1
        return moved

    async def run(self) -> None:
        """Deliver queued items forever."""
        while True:
            item = await self.queue.get()
            await self._deliver(item)
            self.queue.task_done()

    async def _deliver(self, item: T) -> None:
        error = ""
        backoff = self.new_backoff()
        for attempt in range(self.attempts):
            try:
                await self.channel.send(item)
                self.stats["delivered"] += 1
                self._delivered(item)
                return
            except Exception as exc:  # a channel failure must never reach the engine
                error = str(exc)
                if attempt + 1 < self.attempts:
                    self.stats["retries"] += 1
                    await backoff.sleep()
        self.stats["kept"] += 1
        log.warning("%s: could not deliver %s after %d attempts (%s); kept for redelivery",
                    self.channel.name, self.describe(item), self.attempts, error)
        self.outbox.keep(self.channel.name, item, self.attempts, error)

    async def redeliver(self) -> None:
        """Periodically retry what was kept, oldest first, stopping at the first failure."""
        while True:
            await asyncio.sleep(self.redeliver_s)
            # Keep going while passes succeed: a burst that overflowed the queue drains now, not 100 per pass.
            while await self.redeliver_once():
                await asyncio.sleep(0)

    async def redeliver_once(self) -> int:
        """One redelivery pass; returns how many went out."""
        sent = 0
        for outbox_id, item in self.outbox.pending(self.channel.name):
            try:
                await self.channel.send(item)
            except Exception as exc:
                log.info("%s: redelivery still failing: %s", self.channel.name, exc)
                break
            self.outbox.delivered(outbox_id)
            self.stats["redelivered"] += 1
            self._delivered(item)
            sent += 1
        return sent

    def _delivered(self, item: T) -> None:
        if self.on_delivered is not None:
            try:
                self.on_delivered(self.channel.name, item)
            except Exception:  # the listener's failure must not turn a delivery into a retry
                log.exception("%s: delivery listener failed on %s", self.channel.name, self.describe(item))
