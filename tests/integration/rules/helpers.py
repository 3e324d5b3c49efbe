"""Shared pieces of the rules integration tests: a signed-webhook endpoint and an async wait."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.servers import free_port


class Webhook:
    """A real HTTP endpoint on a free port that checks the HMAC and answers 500 to its first ``fail_first`` posts."""

    def __init__(self, secret: str, fail_first: int = 0) -> None:
        self.secret = secret
        self.fail_first = fail_first
        self.received: list[dict[str, Any]] = []
        self.failed = 0
        self.bad_signatures = 0
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                expected = "sha256=" + hmac.new(hook.secret.encode(), body, hashlib.sha256).hexdigest()
                with hook.lock:
                    if not hmac.compare_digest(expected, self.headers.get("X-Gulou-Signature", "")):
                        hook.bad_signatures += 1
                        status = 401
                    elif hook.failed < hook.fail_first:
                        hook.failed += 1
                        status = 500
                    else:
                        hook.received.append(json.loads(body))
                        status = 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


async def until(predicate: Callable[[], Any], timeout: float = 30.0) -> bool:
    """Poll ``predicate`` on the running loop until it holds or the timeout passes; return its last value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return bool(predicate())
