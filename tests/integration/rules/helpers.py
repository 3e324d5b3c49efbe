"""Shared pieces of the rules integration tests: a signed-webhook endpoint and a wait for delivery."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from gulou.rules.service import RulesService
from gulou.workflow.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, SignatureError, verify
from tests.servers import free_port
from tests.waiting import wait_for_async


class Webhook:
    """A real HTTP endpoint on a free port that checks the timestamped HMAC; 500 to its first ``fail_first`` posts."""

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
                try:
                    verify(hook.secret, body, self.headers.get(TIMESTAMP_HEADER), self.headers.get(SIGNATURE_HEADER))
                    signed = True
                except SignatureError:
                    signed = False
                with hook.lock:
                    if not signed:
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


async def delivered_everywhere(service: RulesService, seen_on_mqtt: Callable[[], int], timeout: float = 30.0) -> None:
    """Wait until the engine is idle, every channel delivered every transition, and the MQTT subscriber has them all.

    After this nothing more is on its way: a duplicate or a stray notification would already show in what the
    test collected.
    """

    def done() -> bool:
        made = service.engine.stats.transitions
        return service.queue.empty() and not service._busy and all(
            w.queue.empty() and w.stats["delivered"] + w.stats["redelivered"] >= made for w in service.workers)

    await wait_for_async(done, timeout, "every transition delivered by every channel")
    mqtt = [w for w in service.workers if w.channel.name == "mqtt"]
    if mqtt:
        await wait_for_async(lambda: seen_on_mqtt() >= mqtt[0].stats["delivered"] + mqtt[0].stats["redelivered"],
                             timeout, "the MQTT subscriber to receive what the channel published")
