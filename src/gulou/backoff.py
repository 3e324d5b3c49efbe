"""Jittered exponential backoff for every reconnect and retry loop."""

from __future__ import annotations

import asyncio
import random


class Backoff:
    """Delays that double from ``initial`` up to ``cap``; each wait is jittered so clients do not retry in step."""

    def __init__(self, initial: float = 0.5, cap: float = 30.0, rng: random.Random | None = None) -> None:
        self.initial, self.cap = initial, cap
        self.delay = initial
        self._rng = rng or random.Random()

    def reset(self) -> None:
        """Back to the initial delay (after a success)."""
        self.delay = self.initial

    def next(self) -> float:
        """The next wait: uniform in [delay/2, delay], then the delay doubles up to the cap."""
        wait = self.delay / 2 + self._rng.uniform(0, self.delay / 2)
        self.delay = min(self.delay * 2, self.cap)
        return wait

    async def sleep(self) -> float:
        """Wait the next delay; returns how long it waited."""
        wait = self.next()
        await asyncio.sleep(wait)
        return wait
