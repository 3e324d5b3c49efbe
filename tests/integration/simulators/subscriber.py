"""A test subscriber: collects what the broker delivers while the simulator publishes."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiomqtt

from gulou.settings import parse_broker_url
from tests.waiting import wait_for_async

T = TypeVar("T")


@dataclass
class Received:
    """Messages delivered live (not stale retained copies from earlier runs)."""

    topics: list[str] = field(default_factory=list)
    payloads: list[bytes] = field(default_factory=list)
    # The subscriber's own marker: published after the run, delivered after everything queued before it.
    barrier_topic: str = ""
    barriers: int = 0
    client: aiomqtt.Client | None = None

    def by_domain(self) -> Counter[str]:
        """Count per domain segment of the topic."""
        return Counter(t.split("/")[1] for t in self.topics)


@asynccontextmanager
async def listening(url: str, topic: str = "gulou/#", skip_retained: bool = True) -> AsyncIterator[Received]:
    """Subscribe at QoS 1 before the block starts; collect until it ends."""
    address = parse_broker_url(url)
    identifier = f"test-sub-{uuid.uuid4().hex[:8]}"
    received = Received(barrier_topic=f"gulou/_barrier/{identifier}")
    async with aiomqtt.Client(address.host, address.port, identifier=identifier) as client:
        received.client = client
        await client.subscribe(topic, qos=1)
        await client.subscribe(received.barrier_topic, qos=1)

        async def collect() -> None:
            async for message in client.messages:
                if str(message.topic) == received.barrier_topic:
                    received.barriers += 1
                    continue
                # A broker marks retained copies sent on subscription; live deliveries carry retain=0.
                if skip_retained and message.retain:
                    continue
                received.topics.append(str(message.topic))
                received.payloads.append(_raw(message.payload))

        task = asyncio.create_task(collect())
        try:
            yield received
        finally:
            task.cancel()


async def settle(received: Received, expected: int, timeout: float = 60.0) -> None:
    """Wait until ``expected`` messages arrived, then until a marker published after them came back.

    The broker queues deliveries to one subscriber in order, so once the marker is back anything beyond the
    expected count (a duplicate, a stray) has arrived too and shows in ``received``.
    """
    await wait_for_async(lambda: len(received.topics) >= expected, timeout,
                         f"{expected} messages at the subscriber (got {len(received.topics)})")
    assert received.client is not None
    before = received.barriers
    await received.client.publish(received.barrier_topic, b"barrier", qos=1)
    await wait_for_async(lambda: received.barriers > before, timeout, "the subscriber's marker to come back")


async def retained_statuses(url: str, wanted: int, timeout: float = 10.0) -> dict[str, dict[str, Any]]:
    """The retained status of every device, read by a fresh subscriber."""
    address = parse_broker_url(url)
    out: dict[str, dict[str, Any]] = {}
    async with aiomqtt.Client(address.host, address.port, identifier=f"test-ret-{uuid.uuid4().hex[:8]}") as client:
        await client.subscribe("gulou/+/+/status", qos=1)

        async def collect() -> None:
            async for message in client.messages:
                if message.retain:
                    out[str(message.topic).split("/")[2]] = json.loads(_raw(message.payload))
                if len(out) >= wanted:
                    return

        await _bounded(collect(), timeout)
    return out


async def _bounded(work: Awaitable[T], timeout: float) -> T | None:
    try:
        return await asyncio.wait_for(work, timeout)
    except TimeoutError:
        return None


def run(coro: Callable[[], Awaitable[T]]) -> T:
    """Run an async test body on a fresh loop."""
    return asyncio.run(coro())  # type: ignore[arg-type]


def _raw(payload: object) -> bytes:
    """The payload's bytes whatever type the MQTT client hands it as."""
    return bytes(payload) if isinstance(payload, bytes | bytearray) else str(payload).encode()
