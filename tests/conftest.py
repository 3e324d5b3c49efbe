"""Shared fixtures: real brokers and the shipped registry."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from gulou.app.broker import EmbeddedBroker
from gulou.devices.registry import Registry, load_registry
from tests.servers import Mosquitto, mosquitto_server


@pytest.fixture(scope="session")
def registry() -> Registry:
    """The shipped Gulou registry."""
    return load_registry()


@pytest.fixture
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A Mosquitto of the test's own on a free port.

    Every test owns its broker state: the contract's topics are fixed (``gulou/...``), so a retained status or
    a persistent session one test leaves behind would otherwise reach the next test's subscribers.
    """
    with mosquitto_server(tmp_path_factory.mktemp("mosquitto")) as server:
        yield server


@pytest.fixture
def own_mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A private Mosquitto a test may stop and restart."""
    with mosquitto_server(tmp_path) as server:
        yield server


@pytest.fixture
def embedded_broker() -> Iterator[str]:
    """The in-process amqtt broker, run on its own thread's loop; yields its URL."""
    import threading

    loop = asyncio.new_event_loop()
    broker = EmbeddedBroker()
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(broker.start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="embedded-broker", daemon=True)
    thread.start()
    assert started.wait(10), "embedded broker did not start"
    try:
        yield broker.url
    finally:
        asyncio.run_coroutine_threadsafe(broker.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
