"""The gateway's MQTT downstream: readings as contract JSON, QoS 1, answered only after every PUBACK.

Thousands of stations deliver at the same moment. aiomqtt scans all its pending calls on every publish
(measured: quadratic with 2,000 concurrent publishes), so deliveries go through a queue to a small pool
of publisher tasks: at most ``publishers`` publishes are pending at once, each awaited to its PUBACK.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

import aiomqtt

from gulou.backoff import Backoff
from gulou.hj212.convert import StationReading
from gulou.hj212.downstream import DEADLETTER_TOPIC, DeadLetter, Downstream, DownstreamError, encode

log = logging.getLogger(__name__)
_Job = tuple[list[tuple[str, bytes]], "asyncio.Future[None]"]


class MqttDownstream(Downstream):
    """Publishes each reading on ``gulou/<domain>/<device_id>/telemetry`` and dead letters on their topic."""

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
        publishers: int = 64,
        tls: bool = False,
        ca_file: str | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.extended = extended
        self.deadletter_topic = deadletter_topic
        self.timeout_s = timeout_s
        # Unlimited in-flight window: paho rescans every queued message on each PUBACK when it is limited;
        # the publisher pool bounds what is outstanding instead.
        self._args: dict[str, Any] = {"username": username, "password": password, "identifier": client_id,
                                      "max_inflight_messages": 0, "timeout": timeout_s}
        if tls:
            self._args["tls_params"] = aiomqtt.TLSParameters(ca_certs=ca_file)
        self._publishers = publishers
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._client: aiomqtt.Client | None = None
        self._lock = asyncio.Lock()
        # While the broker is away, packets fail at once instead of each one trying to connect.
        self._backoff = Backoff(0.5, 10.0)
        self._retry_at = 0.0
        self.connects = 0
        self.published = 0

    @property
    def connected(self) -> bool:
        """Whether the link to the broker is up (it is re-made on the next packet after a failure)."""
        return self._client is not None

    async def start(self) -> None:
        """Connect and start the publishers (raises ``DownstreamError`` when the broker is unreachable)."""
        await self._connected()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._publisher()) for _ in range(self._publishers)]

    async def close(self) -> None:
        """Stop the publishers and disconnect."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await client.__aexit__(None, None, None)

    async def deliver(self, readings: Sequence[StationReading]) -> None:
        """Publish every reading and return once all are acknowledged by the broker."""
        items = []
        for reading in readings:
            # A reading with no value to publish (all invalid, plain payloads) has nothing to say.
            if reading.published(self.extended):
                items.append((reading.topic, encode(reading.payload(self.extended))))
        if items:
            await self._submit(items)
        self.published += len(items)

    async def reject(self, letter: DeadLetter) -> None:
        """Publish the dead letter's envelope and return once the broker acknowledged it."""
        await self._submit([(self.deadletter_topic, encode(letter.envelope()))])

    async def _submit(self, items: list[tuple[str, bytes]]) -> None:
        if not self._tasks:
            raise DownstreamError("MQTT downstream not started")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((items, done))
        await done

    async def _publisher(self) -> None:
        while True:
            items, done = await self._queue.get()
            if done.done():
                continue
            try:
                client = await self._connected()
                for topic, payload in items:
                    await self._publish(client, topic, payload)
            except DownstreamError as exc:
                done.set_exception(exc)
            else:
                done.set_result(None)

    async def _publish(self, client: aiomqtt.Client, topic: str, payload: bytes) -> None:
        try:
            await client.publish(topic, payload, qos=1, timeout=self.timeout_s)
        except (TimeoutError, aiomqtt.MqttError, OSError) as exc:
            # Drop the client; the next job reconnects. The station resends what was not answered.
            if self._client is client:
                self._client = None
                asyncio.get_running_loop().create_task(_quietly_close(client))
            raise DownstreamError(f"publish failed: {exc}") from exc

    async def _connected(self) -> aiomqtt.Client:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                loop = asyncio.get_running_loop()
                if loop.time() < self._retry_at:
                    raise DownstreamError(f"broker {self.host}:{self.port} unreachable (next try soon)")
                client = aiomqtt.Client(self.host, self.port, **self._args)
                client.pending_calls_threshold = 2 * self._publishers  # a warning means a real backlog
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


async def _quietly_close(client: aiomqtt.Client) -> None:
    try:
        await client.__aexit__(None, None, None)
    except Exception:
        log.debug("closing a failed MQTT link raised", exc_info=True)
