"""A small HTTP server speaking the InfluxDB v2 write API (``POST /api/v2/write``) that answers what a test scripts.

VictoriaMetrics accepts everything it can parse, so it cannot stand in for an InfluxDB that refuses a batch
(400 field type conflict, 413 too large, 422 outside retention) or is slow to answer: this server can.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.servers import free_port

# InfluxDB 2.x error codes by status, as it writes them in the JSON body of a refusal.
_CODES = {400: "invalid", 401: "unauthorized", 404: "not found", 413: "request too large", 422: "unprocessable entity",
          429: "too many requests", 500: "internal error", 503: "unavailable"}


class InfluxStub:
    """Answers each write with ``answer(body)`` (an HTTP status); keeps the lines of every accepted write."""

    def __init__(self, answer: Callable[[str], int] = lambda body: 204, delay_s: float = 0.0) -> None:
        self.answer = answer
        self.delay_s = delay_s
        self.accepted: list[str] = []  # lines of writes answered 204
        self.requests: list[tuple[int, str]] = []  # (status, body) of every write, in order
        self.lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", errors="replace")
                if not self.path.startswith("/api/v2/write"):
                    self._reply(404, {"code": "not found", "message": f"no route {self.path}"})
                    return
                if stub.delay_s:
                    time.sleep(stub.delay_s)  # the server being slow, not the test waiting
                status = stub.answer(body)
                with stub.lock:
                    stub.requests.append((status, body))
                    if status == 204:
                        stub.accepted.extend(line for line in body.splitlines() if line)
                if status == 204:
                    self._reply(204, None)
                else:
                    self._reply(status, {"code": _CODES.get(status, "error"), "message": f"refused with {status}"})

            def _reply(self, status: int, doc: dict[str, Any] | None) -> None:
                data = b"" if doc is None else json.dumps(doc).encode()
                self.send_response(status)
                if data:
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="influx-stub", daemon=True)
        self.thread.start()

    def statuses(self) -> list[int]:
        """The status of every write so far."""
        with self.lock:
            return [status for status, _ in self.requests]

    def lines(self, measurement_prefix: str = "") -> list[str]:
        """Accepted lines whose measurement starts with the prefix."""
        with self.lock:
            return [line for line in self.accepted if line.startswith(measurement_prefix)]

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def influx_stub(answer: Callable[[str], int] = lambda body: 204, delay_s: float = 0.0) -> Iterator[InfluxStub]:
    """An InfluxStub for the duration of the block."""
    stub = InfluxStub(answer, delay_s)
    try:
        yield stub
    finally:
        stub.close()
