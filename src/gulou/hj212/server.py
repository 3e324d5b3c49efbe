"""The asyncio TCP server stations' data loggers connect to (the logger is the client, §5.6).

Limits: connections (extra ones are closed at once and counted), packet size (the framer's cap), idle
time (a silent link is closed; size it from the stations' real-time interval and heartbeat period).
Each connection's packets are handled in order; the next read waits until the current packet is
answered, so a slow downstream slows the stations instead of filling memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from gulou.hj212.framing import DEFAULT_MAX_SEGMENT, Framer
from gulou.hj212.gateway import Gateway

log = logging.getLogger(__name__)
_WRITE_HIGH_WATER = 64 * 1024


@dataclass(frozen=True)
class ServerLimits:
    """Socket-level limits."""

    max_connections: int = 5000
    max_segment: int = DEFAULT_MAX_SEGMENT
    idle_timeout_s: float = 900.0  # three missed 5-minute heartbeats
    write_timeout_s: float = 30.0
    read_size: int = 65536


class _Connection:
    """One station link: sends replies, remembers whether a packet is being handled."""

    def __init__(self, writer: asyncio.StreamWriter, write_timeout_s: float) -> None:
        self.writer = writer
        name = writer.get_extra_info("peername")
        self.peer = f"{name[0]}:{name[1]}" if isinstance(name, tuple) and len(name) >= 2 else str(name)
        self.write_timeout_s = write_timeout_s
        self.busy = False

    async def send(self, data: bytes) -> None:
        """Write a reply; a vanished or stuck peer is not the gateway's failure."""
        if self.writer.is_closing():
            return
        try:
            self.writer.write(data)
            # Replies are small: only wait when the peer stopped reading and the buffer grows.
            if self.writer.transport.get_write_buffer_size() > _WRITE_HIGH_WATER:
                async with asyncio.timeout(self.write_timeout_s):
                    await self.writer.drain()
        except (ConnectionError, OSError, TimeoutError) as exc:
            log.info("hj212 reply to %s not sent: %s", self.peer, exc)
            self.writer.close()


class Hj212Server:
    """Listens for stations and feeds every framed packet to the gateway."""

    def __init__(self, gateway: Gateway, limits: ServerLimits | None = None) -> None:
        self.gateway = gateway
        self.limits = limits or ServerLimits()
        self._server: asyncio.Server | None = None
        self._tasks: dict[asyncio.Task[None], _Connection] = {}
        self._stopping = False
        self.address: tuple[str, int] = ("", 0)  # bound by start()

    @property
    def open_connections(self) -> int:
        """Connections being served now."""
        return len(self._tasks)

    async def start(self, host: str = "0.0.0.0", port: int = 0) -> tuple[str, int]:
        """Listen; returns the bound address (port 0 picks a free one)."""
        self._server = await asyncio.start_server(self._serve, host, port, limit=self.limits.read_size,
                                                  backlog=4096)
        sock = self._server.sockets[0].getsockname()
        log.info("hj212 gateway listening on %s:%s", sock[0], sock[1])
        self.address = (str(sock[0]), int(sock[1]))
        return self.address

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop accepting, let packets being handled finish (up to ``grace_s``), close every link."""
        self._stopping = True
        if self._server is not None:
            self._server.close()
        for task, conn in list(self._tasks.items()):
            if not conn.busy:
                task.cancel()
        if self._tasks:
            _, pending = await asyncio.wait(list(self._tasks), timeout=grace_s)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=grace_s)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), grace_s)

    def stats(self) -> dict[str, Any]:
        """The gateway's accounting with the open connection count."""
        return self.gateway.accounting.snapshot(self.open_connections)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        acc = self.gateway.accounting
        if self._stopping or len(self._tasks) >= self.limits.max_connections:
            acc.connections["refused"] += 1
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        conn = _Connection(writer, self.limits.write_timeout_s)
        self._tasks[task] = conn
        acc.connections["accepted"] += 1
        framer = Framer(self.limits.max_segment)
        ending = "closed"
        try:
            while not self._stopping:
                try:
                    # asyncio.timeout, not wait_for: no extra task per read (measurably cheaper per packet).
                    async with asyncio.timeout(self.limits.idle_timeout_s):
                        data = await reader.read(self.limits.read_size)
                except TimeoutError:
                    ending = "idle_closed"
                    break
                if not data:
                    break
                acc.bytes_received += len(data)
                conn.busy = True
                for event in framer.feed(data):
                    await self.gateway.handle(event, conn)
                acc.noise_bytes += framer.noise_bytes
                framer.noise_bytes = 0
                conn.busy = False
            conn.busy = True
            for event in framer.close():
                await self.gateway.handle(event, conn)
        except asyncio.CancelledError:
            ending = "closed_on_stop"
        except (ConnectionError, OSError) as exc:
            ending = "reset"
            log.info("hj212 connection from %s ended: %s", conn.peer, exc)
        except Exception:
            # A bug must cost one connection, never the server.
            ending = "error"
            log.exception("hj212 connection from %s failed", conn.peer)
        finally:
            acc.noise_bytes += framer.noise_bytes
            acc.connections[ending] += 1
            self.gateway.forget(conn)
            del self._tasks[task]
            writer.close()
