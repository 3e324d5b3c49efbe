"""Where the gateway hands packets on: the interface, the dead letter and an in-memory implementation.

``deliver`` returns only once the readings are accepted downstream (for MQTT: every PUBACK received),
and the gateway sends 9014 only after that; an exception means "not accepted", so no 9014 is sent and
the station resends. ``reject`` records a dead letter with the raw packet, byte-exact. The MQTT
implementation is in ``gulou.hj212.mqtt``.
"""

from __future__ import annotations

import base64
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gulou.devices.contract import STATION_DEADLETTERS
from gulou.hj212.convert import StationReading
from gulou.timeutil import CHINA_TZ

log = logging.getLogger(__name__)
# Dead letters of the gateway: one topic, the station in the envelope (MNs may hold MQTT wildcards).
DEADLETTER_TOPIC = STATION_DEADLETTERS
SOURCE = "hj212"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A refused packet: raw bytes exactly as received, reason, detail, the MN it claims, the peer."""

    raw: bytes
    reason: str
    detail: str
    mn: str | None
    peer: str | None
    received: datetime

    def envelope(self) -> dict[str, Any]:
        """The JSON envelope published on the dead-letter topic."""
        return {
            "source": SOURCE, "received": self.received.astimezone(CHINA_TZ).isoformat(timespec="milliseconds"),
            "peer": self.peer, "mn": self.mn, "reason": self.reason, "detail": self.detail,
            "raw_b64": base64.b64encode(self.raw).decode("ascii"),
            # Readable copy for people; the bytes of record are raw_b64.
            "raw_text": self.raw.decode("latin-1"),
        }


class DownstreamError(Exception):
    """Downstream did not accept: the gateway withholds its reply so the station sends again."""


class Downstream(ABC):
    """What the gateway hands decoded readings and dead letters to."""

    @abstractmethod
    async def deliver(self, readings: Sequence[StationReading]) -> None:
        """Return only once every reading is accepted downstream; raise ``DownstreamError`` otherwise."""

    @abstractmethod
    async def reject(self, letter: DeadLetter) -> None:
        """Record a dead letter durably; raise ``DownstreamError`` when that is not possible."""

    @property
    def connected(self) -> bool:
        """Whether readings can be handed on now (health checks read it)."""
        return True


@dataclass
class MemoryDownstream(Downstream):
    """Keeps everything in lists: for tests and the benchmark's gateway-only figure."""

    readings: list[StationReading] = field(default_factory=list)
    letters: list[DeadLetter] = field(default_factory=list)
    fail: bool = False

    async def deliver(self, readings: Sequence[StationReading]) -> None:
        """Accept (or, with ``fail``, refuse) a batch of readings."""
        if self.fail:
            raise DownstreamError("downstream refuses (test switch)")
        self.readings.extend(readings)

    async def reject(self, letter: DeadLetter) -> None:
        """Keep a dead letter."""
        if self.fail:
            raise DownstreamError("downstream refuses (test switch)")
        self.letters.append(letter)


def encode(body: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
