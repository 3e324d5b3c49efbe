"""``gulou prune`` and the collector's hourly retention: dead letters and accounting older than configured."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from gulou.settings import LimitsSettings, Settings
from gulou.sinks.embedded import EmbeddedStore

log = logging.getLogger(__name__)
DAY_MS = 86_400_000
PRUNE_EVERY_S = 3600.0


def prune_store(store: EmbeddedStore, limits: LimitsSettings, now_ms: int | None = None) -> dict[str, int]:
    """Apply the retention of ``limits`` to one store; returns the rows deleted per table."""
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    dead_before = now - int(limits.deadletter_retention_days * DAY_MS)
    return store.prune(deadletters_before_ms=dead_before, deadletters_keep=limits.deadletter_max_rows,
                       counts_before_ms=now - int(limits.counts_retention_days * DAY_MS),
                       unknown_before_ms=dead_before)


def run_prune(settings: Settings, vacuum: bool = False) -> dict[str, int]:
    """``gulou prune``: retention on the configured store, which must exist."""
    path = Path(settings.store)
    if not path.exists():
        raise FileNotFoundError(f"no store at {path}")
    store = EmbeddedStore(path)
    try:
        deleted = prune_store(store, settings.limits)
        if vacuum:
            store.vacuum()
        return deleted
    finally:
        store.close()


class Pruner:
    """Prunes the store every hour on a daemon thread while a collector runs (its own connection)."""

    def __init__(self, settings: Settings, every_s: float = PRUNE_EVERY_S, first_after_s: float = 60.0) -> None:
        self.settings = settings
        self.every_s = every_s
        # The collector creates its store as it starts: the first pass waits for it.
        self.first_after_s = first_after_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prune", daemon=True)

    def start(self) -> Pruner:
        """Start the thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop after the pass under way."""
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        self._stop.wait(self.first_after_s)
        while not self._stop.is_set():
            try:
                deleted = run_prune(self.settings)
                if any(deleted.values()):
                    log.info("retention: deleted %s dead letters and %s accounting rows", deleted["deadletters"],
                             deleted["counts"])
            except Exception as exc:  # retention must never stop the collector
                log.warning("retention pass failed: %s", exc)
            self._stop.wait(self.every_s)
