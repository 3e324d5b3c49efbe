"""A loopback TCP proxy whose server-to-client direction can be frozen while the connections stay open."""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType


class FreezingProxy:
    """Forwards 127.0.0.1:<port> to a target port; ``freeze`` holds every byte the server sends to clients.

    A frozen connection stays open and keeps carrying client-to-server traffic, which is what a half-dead
    NAT or load balancer looks like to an MQTT client: it can publish, but nothing comes back. Bytes held
    while frozen are delivered in order on ``thaw`` (unless the client closed that connection meanwhile).
    """

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = int(self._listener.getsockname()[1])
        self._flowing = threading.Event()
        self._flowing.set()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self.accepted = 0

    # -- control ------------------------------------------------------------------------------------------
    def start(self) -> FreezingProxy:
        """Start accepting connections."""
        self._spawn(self._accept_loop, "proxy-accept")
        return self

    def freeze(self) -> None:
        """Stop delivering server-to-client bytes on every connection, current and future."""
        self._flowing.clear()

    def thaw(self) -> None:
        """Deliver held bytes and let traffic flow again."""
        self._flowing.set()

    def close(self) -> None:
        """Close the listener and every connection."""
        self._closed.set()
        self._flowing.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for s in sockets:
            _shut(s)
        for t in self._threads:
            t.join(timeout=5)

    def __enter__(self) -> FreezingProxy:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------------------------
    def _spawn(self, target: object, name: str, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _shut(client)
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
                self.accepted += 1
            gone = threading.Event()
            self._spawn(self._pump, "proxy-up", client, upstream, gone, False)
            self._spawn(self._pump, "proxy-down", upstream, client, gone, True)

    def _pump(self, src: socket.socket, dst: socket.socket, gone: threading.Event, gated: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    return
                # Holding the chunk (and not reading further) leaves the rest in the kernel buffers, so the
                # server sees a slow reader, not a closed connection.
                while gated and not self._flowing.wait(0.1):
                    if gone.is_set() or self._closed.is_set():
                        return
                if gone.is_set():
                    return
                dst.sendall(data)
        except OSError:
            return
        finally:
            gone.set()
            _shut(src)
            _shut(dst)


def _shut(s: socket.socket) -> None:
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        s.close()
