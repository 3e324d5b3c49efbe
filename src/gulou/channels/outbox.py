"""The one outbox: where notifications a channel could not deliver wait for redelivery, oldest first.

Two implementations share the bookkeeping (bound, drop accounting, error trimming): in memory, bounded,
for runs without a store file and for derived series; and durable, in the alert store's ``alert_outbox``
table. ``outbox_for`` is the one place that decides which a channel gets.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

from gulou.channels.base import Channel
from gulou.rules.alert_store import AlertStore
from gulou.rules.alerts import AlertTransition

log = logging.getLogger(__name__)
T = TypeVar("T")
# A channel without a store file keeps at most this many notifications in memory (oldest dropped first).
MEMORY_LIMIT = 10_000
ERROR_CHARS = 500


def _one(_item: object) -> int:
    return 1


class Outbox(ABC, Generic[T]):
    """Undeliverable items per channel; with a ``limit``, the oldest are dropped (counted, logged) beyond it."""

    def __init__(self, limit: int | None = None, size: Callable[[T], int] = _one) -> None:
        self.limit = limit
        self._size = size
        self.dropped_items = 0
        self.dropped_size = 0
        self._last_log = 0.0

    def keep(self, channel: str, item: T, attempts: int, error: str) -> None:
        """Keep one item for later redelivery, dropping the oldest when over the limit."""
        self._put(channel, item, attempts, error[:ERROR_CHARS])
        if self.limit is None:
            return
        while len(self) > self.limit:
            oldest = self._pop_oldest()
            if oldest is None:
                break
            self.dropped_items += 1
            self.dropped_size += self._size(oldest)
            now = time.monotonic()
            if now - self._last_log > 10:
                self._last_log = now
                log.warning("%s: outbox full (%d); %d item(s) of size %d dropped so far", channel,
                            self.limit, self.dropped_items, self.dropped_size)

    @abstractmethod
    def pending(self, channel: str, limit: int = 100) -> list[tuple[int, T]]:
        """A channel's waiting items, oldest first, with the id ``delivered`` takes."""

    @abstractmethod
    def delivered(self, outbox_id: int) -> None:
        """Forget an item once it finally went out."""

    @abstractmethod
    def __len__(self) -> int:
        """Items waiting, all channels."""

    @abstractmethod
    def _put(self, channel: str, item: T, attempts: int, error: str) -> None:
        """Store one item."""

    @abstractmethod
    def _pop_oldest(self) -> T | None:
        """Remove and return the oldest item of any channel."""


class MemoryOutbox(Outbox[T]):
    """In-process outbox: lost on exit, so bounded (``size`` weighs an item for the drop counters)."""

    def __init__(self, limit: int | None = MEMORY_LIMIT, size: Callable[[T], int] = _one) -> None:
        super().__init__(limit, size)
        self._items: OrderedDict[int, tuple[str, T]] = OrderedDict()
        self._next = 0

    def pending(self, channel: str, limit: int = 100) -> list[tuple[int, T]]:
        """A channel's waiting items, oldest first."""
        return [(i, item) for i, (c, item) in self._items.items() if c == channel][:limit]

    def delivered(self, outbox_id: int) -> None:
        """Forget one."""
        self._items.pop(outbox_id, None)

    def __len__(self) -> int:
        return len(self._items)

    def _put(self, channel: str, item: T, attempts: int, error: str) -> None:
        self._next += 1
        self._items[self._next] = (channel, item)

    def _pop_oldest(self) -> T | None:
        if not self._items:
            return None
        _, (_, item) = self._items.popitem(last=False)
        return item


class StoreOutbox(Outbox[AlertTransition]):
    """Durable outbox in the alert store: notifications survive a restart (kept as their JSON payload)."""

    def __init__(self, store: AlertStore, limit: int | None = None) -> None:
        super().__init__(limit)
        self.store = store

    def pending(self, channel: str, limit: int = 100) -> list[tuple[int, AlertTransition]]:
        """A channel's waiting notifications, oldest first."""
        return [(i, AlertTransition.from_json(p)) for i, p in self.store.pending(channel, limit)]

    def delivered(self, outbox_id: int) -> None:
        """Forget one."""
        self.store.delivered(outbox_id)

    def __len__(self) -> int:
        return sum(self.store.outbox_counts().values())

    def _put(self, channel: str, item: AlertTransition, attempts: int, error: str) -> None:
        self.store.keep(channel, item.to_json(), attempts, error)

    def _pop_oldest(self) -> AlertTransition | None:
        payload = self.store.pop_oldest()
        return None if payload is None else AlertTransition.from_json(payload)


def outbox_for(channel: Channel, store: AlertStore | None) -> Outbox[AlertTransition]:
    """Durable in the alert store when there is one and the channel does not write to it; else in memory."""
    if store is None or channel.writes_store:
        return MemoryOutbox()
    return StoreOutbox(store)
