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

T = TypeVar("T")


@dataclass
class Received:
    """Messages delivered live (not stale retained copies from earlier runs)."""

    topics: list[str] = field(default_factory=list)
    payloads: list[bytes] = field(default_factory=list)

    def by_domain(self) -> Counter[str]:
        """Count per domain segment of the topic."""
        return Counter(t.split("/")[1] for t in self.topics)


@asynccontextmanager
async def listening(url: str, topic: str = "gulou/#", skip_retained: bool = True) -> AsyncIterator[Received]:
    """Subscribe at QoS 1 before the block starts; collect until it ends."""
    address = parse_broker_url(url)
    received = Received()
    async with aiomqtt.Client(address.host, address.port, identifier=f"test-sub-{uuid.uuid4().hex[:8]}") as client:
        await client.subscribe(topic, qos=1)

        async def collect() -> None:
            async for message in client.messages:
                # A broker marks retained copies sent on subscription; live deliveries carry retain=0.
                if skip_retained and message.retain:
                    continue
                received.topics.append(str(message.topic))
                received.payloads.append(bytes(message.payload))  # type: ignore[arg-type]

        task = asyncio.create_task(collect())
        try:
            yield received
        finally:
            task.cancel()


async def settle(received: Received, expected: int, timeout: float = 20.0) -> None:
    """Wait until ``expected`` messages arrived (QoS 1 delivery lags the last PUBACK slightly)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(received.topics) < expected and loop.time() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # anything beyond the expected count would show up now


async def retained_statuses(url: str, wanted: int, timeout: float = 10.0) -> dict[str, dict[str, Any]]:
    """The retained status of every device, read by a fresh subscriber."""
    address = parse_broker_url(url)
    out: dict[str, dict[str, Any]] = {}
    async with aiomqtt.Client(address.host, address.port, identifier=f"test-ret-{uuid.uuid4().hex[:8]}") as client:
        await client.subscribe("gulou/+/+/status", qos=1)

        async def collect() -> None:
            async for message in client.messages:
                if message.retain:
                    out[str(message.topic).split("/")[2]] = json.loads(bytes(message.payload))  # type: ignore[arg-type]
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
