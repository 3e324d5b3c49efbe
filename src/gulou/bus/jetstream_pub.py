"""Pipelined JetStream publishing: a whole batch in flight, each acknowledgement matched to its message.

nats-py's ``publish_async`` leaves the future of a message the stream refused (for instance "maximum bytes
exceeded") unresolved, because its reply handler raises instead of setting the error; the collector would
only ever see timeouts. This publisher reads the replies itself, and tracks a batch with one counter and
one event rather than a future per message (a future and its callback cost more than the publish).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from itertools import count

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription


class StreamRefused(Exception):
    """The stream answered with an error (``err_code`` as nats-server numbers them)."""

    def __init__(self, code: int, err_code: int, description: str) -> None:
        super().__init__(f"{description} (code {code}, err_code {err_code})")
        self.code, self.err_code, self.description = code, err_code, description

    @property
    def full(self) -> bool:
        """The stream's byte or message limit is reached."""
        return "maximum" in self.description


class NoStream(Exception):
    """Nobody answered for the subject right now (no stream leader during an election)."""


# Outcome of one message: None while waiting, True stored, False duplicate, or the error.
Outcome = bool | Exception | None


@dataclass
class Flight:
    """One batch in flight: an outcome per message, and an event once every message has one."""

    outcomes: list[Outcome]
    waiting: int
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def settle(self, index: int, outcome: bool | Exception) -> None:
        """Record a message's outcome (the first one counts)."""
        if self.outcomes[index] is None:
            self.outcomes[index] = outcome
            self.waiting -= 1
            if self.waiting == 0:
                self.done.set()


class Publisher:
    """Publishes with a reply subject ``<inbox>.<batch>.<index>`` under one wildcard subscription."""

    def __init__(self, nc: NatsClient) -> None:
        self.nc = nc
        self.prefix = nc.new_inbox()
        self._flights: dict[str, Flight] = {}
        self._ids = count()
        self._sub: Subscription | None = None

    async def start(self) -> None:
        """Subscribe to the replies."""
        self._sub = await self.nc.subscribe(f"{self.prefix}.*.*", cb=self._reply)

    async def send(self, messages: list[tuple[str, bytes, str]]) -> tuple[str, Flight]:
        """Publish (subject, body, message id) triples; returns the flight to wait on (``forget`` it after)."""
        name = str(next(self._ids))
        flight = Flight([None] * len(messages), len(messages))
        if not messages:
            flight.done.set()
        self._flights[name] = flight
        base = f"{self.prefix}.{name}."
        for i, (subject, body, msg_id) in enumerate(messages):
            try:
                await self.nc.publish(subject, body, reply=f"{base}{i}", headers={"Nats-Msg-Id": msg_id})
            except Exception as exc:  # the connection refused it: that message failed, the others go on
                flight.settle(i, exc)
        return name, flight

    def forget(self, name: str) -> None:
        """Stop tracking a batch (late replies are then ignored)."""
        self._flights.pop(name, None)

    async def _reply(self, msg: Msg) -> None:
        name, _, index = msg.subject[len(self.prefix) + 1:].partition(".")
        flight = self._flights.get(name)
        if flight is None or not index.isdigit():
            return
        i = int(index)
        if msg.headers and msg.headers.get("Status") == "503":
            flight.settle(i, NoStream(msg.subject))
        elif b'"error"' in msg.data:
            error = json.loads(msg.data).get("error") or {}
            flight.settle(i, StreamRefused(int(error.get("code", 0)), int(error.get("err_code", 0)),
                                           str(error.get("description", ""))))
        else:
            # A PubAck: {"stream":"GULOU", "seq":12,"duplicate": true} for a copy the stream already had (the
            # server writes the field only when true, with spacing of its own: match the name alone).
            flight.settle(i, b'"duplicate"' not in msg.data)
