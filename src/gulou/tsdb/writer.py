"""The storage boundary: a ``Sink`` durably stores batches; a ``LineWriter`` takes ready-made line protocol."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from gulou.tsdb.records import Batch

if TYPE_CHECKING:
    from gulou.settings import Settings


class SinkError(Exception):
    """The sink could not store a batch (outage, refusal); the caller spools it and retries later."""


class SinkRejected(SinkError):
    """The store refused the batch itself (bad data): retrying cannot help, so dead-letter it."""


@runtime_checkable
class LineWriter(Protocol):
    """A time-series database that takes line protocol (derived series, health, alerts, completeness)."""

    def write_lines(self, lines: Iterable[str]) -> None:
        """Write the lines durably or raise ``SinkError``."""


class Sink(ABC):
    """Somewhere readings are stored. ``write`` returns only once the batch is durable, else raises."""

    name: str = "sink"

    @classmethod
    def from_settings(cls, settings: Settings) -> Sink | None:
        """The sink its own settings section describes, or None when that section leaves it off."""
        return None

    @abstractmethod
    def write(self, batch: Batch) -> None:
        """Store the batch durably, idempotently (same device + timestamp overwrites), or raise SinkError."""

    @abstractmethod
    def flush(self) -> None:
        """Make everything written so far durable (no-op where ``write`` already is)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections and files."""
