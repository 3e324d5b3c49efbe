"""Pipelined JetStream publishing: many messages in flight, each acknowledgement matched to its future.

nats-py's ``publish_async`` leaves the future of a message the stream refused (for instance "maximum bytes
exceeded") unresolved, because its reply handler raises instead of setting the error; the collector would
only ever see timeouts. This publisher reads the replies itself.
"""

from __future__ import annotations

import asyncio
import json
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


class Publisher:
    """Publishes with a reply subject under one wildcard subscription; ``send`` returns the ack's future.

    A future resolves to True for a duplicate the stream already had, False for a newly stored message.
    """

    def __init__(self, nc: NatsClient) -> None:
        self.nc = nc
        self.prefix = nc.new_inbox()
        self._futures: dict[str, asyncio.Future[bool]] = {}
        self._tokens = count()
        self._sub: Subscription | None = None

    async def start(self) -> None:
        """Subscribe to the replies."""
        self._sub = await self.nc.subscribe(f"{self.prefix}.*", cb=self._reply)

    async def send(self, subject: str, body: bytes, msg_id: str) -> asyncio.Future[bool]:
        """Publish one message; the future resolves when its acknowledgement (or refusal) arrives."""
        token = str(next(self._tokens))
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        future.add_done_callback(lambda _f: self._futures.pop(token, None))
        self._futures[token] = future
        await self.nc.publish(subject, body, reply=f"{self.prefix}.{token}", headers={"Nats-Msg-Id": msg_id})
        return future

    async def _reply(self, msg: Msg) -> None:
        future = self._futures.get(msg.subject[len(self.prefix) + 1:])
        if future is None or future.done():
            return
        if msg.headers and msg.headers.get("Status") == "503":
            future.set_exception(NoStream(msg.subject))
            return
        try:
            data = json.loads(msg.data)
        except ValueError as exc:
            future.set_exception(exc)
            return
        error = data.get("error")
        if error:
            future.set_exception(StreamRefused(int(error.get("code", 0)), int(error.get("err_code", 0)),
                                               str(error.get("description", ""))))
        else:
            future.set_result(bool(data.get("duplicate")))

    @property
    def in_flight(self) -> int:
        """Messages still waiting for their acknowledgement."""
        return len(self._futures)
