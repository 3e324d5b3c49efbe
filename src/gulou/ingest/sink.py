"""The storage boundary: a ``Sink`` durably stores batches of points and status events."""

from __future__ import annotations

from abc import ABC, abstractmethod

from gulou.ingest.records import Batch


class SinkError(Exception):
    """The sink could not store a batch (outage, refusal); the caller spools it and retries later."""


class Sink(ABC):
    """Somewhere readings are stored. ``write`` returns only once the batch is durable, else raises."""

    name: str = "sink"

    @abstractmethod
    def write(self, batch: Batch) -> None:
        """Store the batch durably, idempotently (same device + timestamp overwrites), or raise SinkError."""

    @abstractmethod
    def flush(self) -> None:
        """Make everything written so far durable (no-op where ``write`` already is)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections and files."""
