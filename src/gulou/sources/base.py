"""The source boundary: what the collector needs from anything that delivers device messages."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from gulou.settings import Settings


@dataclass(frozen=True, slots=True)  # one per message: slots keep it small and quick to build
class Delivery:
    """One message from a source, not yet acknowledged to it."""

    # The device-contract address ``gulou/<domain>/<device>/<kind>``: a source speaking another transport
    # (a NATS subject, an HJ 212 frame) maps its own addressing onto it, so the decoder stays the same.
    topic: str
    payload: bytes
    received: float  # epoch seconds at arrival
    # Whatever the source needs to acknowledge the message later; the collector only hands it back.
    token: object = None
    # The payload's size when the source kept only its first bytes (over SourceOptions.max_payload_bytes);
    # -1 when ``payload`` is whole.
    size: int = -1
    # The source says it handed this message out before (MQTT's DUP flag): it may have been stored already.
    redelivered: bool = False


@dataclass(frozen=True)
class SourceOptions:
    """Per-process choices a source is built with, on top of its own settings section."""

    # Stable identity (MQTT client id, durable consumer name): a restarted collector resumes where it was.
    client_id: str
    # Load-sharing group (MQTT shared subscription, queue group); None: this process takes every message.
    share_group: str | None
    # The most deliveries the source may hand over before they are acknowledged (flow control).
    max_in_flight: int = 2000
    # A transport protocol version other than the source's default (MQTT "3.1.1" for the embedded broker).
    protocol: str | None = None
    # Larger payloads are cut to their first ``keep_bytes`` at once (the collector dead-letters them), so a
    # flood of huge messages cannot fill the memory of the deliveries waiting in flight.
    max_payload_bytes: int | None = None
    keep_bytes: int = 4096
    # Take only what the broker kept for this identity, then end its session (scale-down of a collector slot).
    drain: bool = False


class Source(ABC):
    """Delivers messages to a callback and is told which ones are durably stored, so it can acknowledge them."""

    name: ClassVar[str] = "source"

    #: Identity reported in health figures (the client id).
    id: str
    #: Upper bound on unacknowledged deliveries out at once; the collector sizes its queue from it.
    max_in_flight: int

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: Settings, options: SourceOptions) -> Source | None:
        """The source its settings section describes, or None when that section leaves it off."""

    @abstractmethod
    def start(self, deliver: Callable[[Delivery], None]) -> None:
        """Connect in the background and call ``deliver`` for each message (from the source's own thread)."""

    @abstractmethod
    def wait_connected(self, timeout: float) -> bool:
        """Block until receiving (True) or until the timeout passes (False)."""

    @abstractmethod
    def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Acknowledge a batch; called only once it is durably stored (or dead-lettered)."""

    def redelivery_key(self, delivery: Delivery) -> str | None:
        """A name the source gives this message again when it redelivers it, or None when it has none.

        Identical payloads are distinct messages, so only such a name lets a redelivered copy be recognised.
        """
        return None

    @abstractmethod
    def pause(self) -> None:
        """Stop handing deliveries on; unacknowledged ones come back on the next start."""

    @abstractmethod
    def stop(self) -> None:
        """Send acknowledgements still queued, then disconnect."""

    # -- health ------------------------------------------------------------------------------------------
    @property
    @abstractmethod
    def connected(self) -> bool:
        """Whether the source is connected and receiving."""

    @property
    @abstractmethod
    def stalled(self) -> bool:
        """Whether the source found itself connected but deaf (and is reconnecting)."""

    @property
    @abstractmethod
    def reconnects(self) -> int:
        """Reconnections since start."""

    @property
    @abstractmethod
    def last_message_at(self) -> float | None:
        """``time.monotonic()`` of the last delivery, or None before the first."""
