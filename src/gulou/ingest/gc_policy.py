"""Garbage-collector thresholds for processes that handle tens of thousands of short-lived messages a second."""

from __future__ import annotations

import gc

# CPython's default first threshold (700 allocations) runs a collection about every 70 messages in a collector;
# each one promotes the batch still in hand, so a full collection of every long-lived object followed every few
# thousand messages: 0.8 s of a 200,000-message run (about 4 µs a message), measured with gc.callbacks. At
# 50,000 the same run collected 4 times (0.03 s). Messages are freed by reference counting as soon as they are
# stored, so this only delays reclaiming reference cycles, which the message path does not make.
THRESHOLDS = (50_000, 20, 20)


def tune_gc() -> None:
    """Collect garbage less often: set the thresholds above (once per process, before the work starts)."""
    gc.set_threshold(*THRESHOLDS)
