"""Helpers for the gateway integration tests: the server on its own thread, stations on plain sockets."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from gulou.hj212.downstream import Downstream
from gulou.hj212.gateway import Gateway, GatewayOptions
from gulou.hj212.server import Hj212Server, ServerLimits
from gulou.hj212.stations import StationBook

T = TypeVar("T")


class GatewayThread:
    """A running gateway (real TCP on a free port) whose loop lives on a background thread."""

    def __init__(self, book: StationBook, downstream: Callable[[], Awaitable[Downstream]],
                 limits: ServerLimits | None = None, options: GatewayOptions | None = None) -> None:
        self._book, self._factory, self._limits, self._options = book, downstream, limits, options
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="hj212-gateway", daemon=True)
        self.server: Hj212Server | None = None
        self.downstream: Downstream | None = None
        self.port = 0

    def __enter__(self) -> GatewayThread:
        self._thread.start()
        self.call(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.call(self._stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)

    async def _start(self) -> None:
        self.downstream = await self._factory()
        self.server = Hj212Server(Gateway(self._book, self.downstream, self._options), self._limits)
        _, self.port = await self.server.start("127.0.0.1", 0)

    async def _stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
        close = getattr(self.downstream, "close", None)
        if close is not None:
            await close()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run a coroutine on the gateway's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stats(self) -> dict[str, Any]:
        """The gateway's accounting, read on its own loop."""
        async def read() -> dict[str, Any]:
            assert self.server is not None
            return self.server.stats()
        return self.call(read())


class Station:
    """A blocking TCP client that writes raw bytes and reads the gateway's CR LF-terminated replies."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf = b""

    def send(self, *chunks: bytes) -> None:
        """Write each chunk with its own send call."""
        for chunk in chunks:
            self.sock.sendall(chunk)

    def replies(self, count: int, timeout: float = 15) -> list[bytes]:
        """The next ``count`` replies; fails naming how many arrived."""
        deadline = time.monotonic() + timeout
        out: list[bytes] = []
        while len(out) < count:
            while b"\r\n" in self._buf and len(out) < count:
                line, self._buf = self._buf.split(b"\r\n", 1)
                out.append(line + b"\r\n")
            if len(out) == count:
                break
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"got {len(out)} of {count} replies within {timeout} s: {out}"
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            assert data, f"the gateway closed the link after {len(out)} of {count} replies"
            self._buf += data
        return out

    def has_pending_bytes(self) -> bool:
        """Whether the gateway has sent anything not read yet (checked without waiting)."""
        self.sock.setblocking(False)
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return False
        finally:
            self.sock.setblocking(True)
        self._buf += data
        return True

    def wait_closed(self, timeout: float = 15) -> None:
        """Block until the gateway closes the link; fail after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                if self.sock.recv(65536) == b"":
                    return
            except TimeoutError:
                continue
            except ConnectionResetError:
                return
        raise AssertionError(f"the gateway kept the link open beyond {timeout} s")

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll until the predicate holds, else fail naming what was awaited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
