"""The embedded MQTT broker (amqtt, in-process) used when no ``--broker`` is configured."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from amqtt.broker import Broker

from gulou.ops.metrics import parse_listen
from gulou.settings import BrokerAddress, Settings

log = logging.getLogger(__name__)


class EmbeddedBroker:
    """An amqtt broker on a free loopback port, so it never collides with a broker already on 1883."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.requested_port = port
        self.port: int | None = None
        self._broker: Any = None

    async def start(self) -> BrokerAddress:
        """Start listening and return the address clients should use."""
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.requested_port}"}},
            # The embedded broker is a loopback-only convenience; production uses Mosquitto with ACLs.
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        self._broker = Broker(config)
        await self._broker.start()
        server = self._broker._servers["default"].instance  # amqtt exposes no public port accessor
        sock: socket.socket = server.sockets[0]
        self.port = int(sock.getsockname()[1])
        log.info("embedded MQTT broker listening on mqtt://%s:%s", self.host, self.port)
        return BrokerAddress(host=self.host, port=self.port, tls=False)

    @property
    def url(self) -> str:
        """``mqtt://host:port`` of the running broker."""
        if self.port is None:
            raise RuntimeError("embedded broker not started")
        return f"mqtt://{self.host}:{self.port}"

    async def stop(self) -> None:
        """Shut the broker down, closing client connections."""
        if self._broker is not None:
            await self._broker.shutdown()
            self._broker = None

    async def __aenter__(self) -> EmbeddedBroker:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


@dataclass(frozen=True)
class BrokerLease:
    """The broker a command talks to, and whether this process runs it."""

    address: BrokerAddress
    embedded: bool

    @property
    def url(self) -> str:
        """``mqtt://host:port`` (or ``mqtts://``)."""
        return f"{'mqtts' if self.address.tls else 'mqtt'}://{self.address.host}:{self.address.port}"


@asynccontextmanager
async def broker_for(settings: Settings, announce: Callable[[str], None] | None = None) -> AsyncIterator[BrokerLease]:
    """The configured broker, or an embedded one started for the block and stopped after it."""
    address = settings.broker_address()
    if address is not None:
        yield BrokerLease(address, embedded=False)
        return
    if settings.mqtt.listen:
        host, port = parse_listen(settings.mqtt.listen)
        embedded = EmbeddedBroker(host, port)
        address = await embedded.start()
        log.warning("embedded MQTT broker listening on %s:%s for devices: anonymous, no TLS; for a trusted "
                    "network only (production: Mosquitto, docs/deploy.md)", host, address.port)
        if host in ("0.0.0.0", "::"):
            # This process's own clients reach a wildcard listener on loopback.
            address = BrokerAddress(host="127.0.0.1", port=address.port, tls=False)
    else:
        embedded = EmbeddedBroker()
        address = await embedded.start()
    if announce is not None:
        announce(f"no broker configured: embedded MQTT broker at mqtt://{address.host}:{address.port}")
    try:
        yield BrokerLease(address, embedded=True)
    finally:
        await embedded.stop()
