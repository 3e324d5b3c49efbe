"""The bounded hand-over between a source's thread and the collector's writer thread."""

from __future__ import annotations

import collections
import threading
import time
from typing import Generic, TypeVar

T = TypeVar("T")


class Inbox(Generic[T]):
    """A bounded FIFO for one producer thread and one consumer thread that takes items in batches.

    ``queue.Queue`` takes a lock and signals a condition on every put and every get, a few microseconds
    per message at tens of thousands a second. Here an append is a deque append plus an event check, and
    the consumer takes everything waiting at once. The bound blocks the producer (the source's network
    thread stops reading, so TCP pushes back on the broker), as the queue's did.
    """

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, got {maxsize}")
        self.maxsize = maxsize
        self._items: collections.deque[T] = collections.deque()
        self._ready = threading.Event()  # set when items may be waiting
        self._room = threading.Event()  # set when the producer may go on
        self._room.set()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T) -> None:
        """Append one item; blocks while the inbox is full."""
        items = self._items
        items.append(item)
        if not self._ready.is_set():
            self._ready.set()
        while len(items) >= self.maxsize:
            self._room.clear()
            # Checked again after clearing: the consumer may have taken items (and set the event) just before.
            if len(items) >= self.maxsize:
                self._room.wait(0.1)

    def take(self, limit: int, first_wait_s: float, fill_wait_s: float) -> list[T]:
        """Up to ``limit`` items: waits ``first_wait_s`` for the first, then up to ``fill_wait_s`` for more."""
        batch = self._drain(limit)
        if not batch:
            if not self._wait(first_wait_s):
                return batch
            batch = self._drain(limit)
        deadline = time.monotonic() + fill_wait_s
        while len(batch) < limit:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._wait(remaining):
                break
            batch += self._drain(limit - len(batch))
        return batch

    def _wait(self, timeout: float) -> bool:
        if self._items:
            return True
        self._ready.clear()
        # Checked again after clearing: the producer may have appended (and seen the event set) just before.
        if self._items:
            return True
        return self._ready.wait(timeout) and bool(self._items)

    def _drain(self, limit: int) -> list[T]:
        items = self._items
        n = min(limit, len(items))
        batch = [items.popleft() for _ in range(n)]
        if n and not self._room.is_set():
            self._room.set()
        return batch
