"""Where the gateway hands packets on: the interface, an MQTT implementation and an in-memory one.

``deliver`` returns only once the readings are accepted downstream (for MQTT: every PUBACK received),
and the gateway sends 9014 only after that; an exception means "not accepted", so no 9014 is sent and
the station resends. ``reject`` records a dead letter with the raw packet, byte-exact.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiomqtt

from gulou.backoff import Backoff
from gulou.hj212.convert import StationReading
from gulou.timeutil import CHINA_TZ

log = logging.getLogger(__name__)
# Dead letters of the gateway: one topic, the station in the envelope (MNs may hold MQTT wildcards).
DEADLETTER_TOPIC = "gulou/deadletters/hj212"
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


class MqttDownstream(Downstream):
    """Publishes each reading as the contract's JSON with QoS 1; returns after the broker's PUBACKs."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        client_id: str = "gulou-hj212",
        extended: bool = True,
        deadletter_topic: str = DEADLETTER_TOPIC,
        timeout_s: float = 10.0,
        max_inflight: int = 1000,
    ) -> None:
        self.host, self.port = host, port
        self.extended = extended
        self.deadletter_topic = deadletter_topic
        self.timeout_s = timeout_s
        self._args: dict[str, Any] = {
            "username": username, "password": password, "identifier": client_id,
            "max_inflight_messages": max_inflight, "timeout": timeout_s,
        }
        self._client: aiomqtt.Client | None = None
        self._lock = asyncio.Lock()
        # While the broker is away, packets fail at once instead of each one trying to connect.
        self._backoff = Backoff(0.5, 10.0)
        self._retry_at = 0.0
        self.connects = 0
        self.published = 0

    async def start(self) -> None:
        """Connect (raises ``DownstreamError`` when the broker is unreachable)."""
        await self._connected()

    async def close(self) -> None:
        """Disconnect cleanly."""
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await client.__aexit__(None, None, None)

    async def _connected(self) -> aiomqtt.Client:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                loop = asyncio.get_running_loop()
                if loop.time() < self._retry_at:
                    raise DownstreamError(f"broker {self.host}:{self.port} unreachable (next try soon)")
                client = aiomqtt.Client(self.host, self.port, **self._args)
                try:
                    await client.__aenter__()
                except (aiomqtt.MqttError, OSError) as exc:
                    self._retry_at = loop.time() + self._backoff.next()
                    raise DownstreamError(f"broker {self.host}:{self.port} unreachable: {exc}") from exc
                self._backoff.reset()
                if self.connects:
                    log.info("hj212 downstream reconnected to %s:%s", self.host, self.port)
                self._client = client
                self.connects += 1
            return self._client

    async def _publish(self, items: Sequence[tuple[str, bytes]]) -> None:
        client = await self._connected()
        try:
            await asyncio.gather(*(client.publish(t, p, qos=1, timeout=self.timeout_s) for t, p in items))
        except (TimeoutError, aiomqtt.MqttError, OSError) as exc:
            # Drop the client; the next call reconnects. The station resends what was not acked.
            if self._client is client:
                self._client = None
                asyncio.get_running_loop().create_task(_quietly_close(client))
            raise DownstreamError(f"publish failed: {exc}") from exc

    async def deliver(self, readings: Sequence[StationReading]) -> None:
        """Publish every reading on its device's telemetry topic and wait for all PUBACKs."""
        items = []
        for reading in readings:
            body = reading.payload(self.extended)
            if len(body) > 1:  # without flags a reading whose values are all invalid has nothing to say
                items.append((reading.topic, encode(body)))
        if items:
            await self._publish(items)
        self.published += len(items)

    async def reject(self, letter: DeadLetter) -> None:
        """Publish the dead letter's envelope and wait for the PUBACK."""
        await self._publish([(self.deadletter_topic, encode(letter.envelope()))])


async def _quietly_close(client: aiomqtt.Client) -> None:
    try:
        await client.__aexit__(None, None, None)
    except Exception:
        log.debug("closing a failed MQTT link raised", exc_info=True)


def encode(body: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
