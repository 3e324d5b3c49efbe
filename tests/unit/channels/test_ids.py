"""Every notification carries its transition's deterministic id: webhook body and header, MQTT payload."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gulou.channels.base import notification_body, transition_id
from gulou.channels.webhook import WebhookChannel
from gulou.rules.alerts import AlertTransition
from gulou.timeutil import to_ms


class Receiver(ThreadingHTTPServer):
    """Records each POST's headers and JSON body."""

    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, str], dict[str, object]]] = []
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.posts.append((dict(self.headers.items()), json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A local HTTP server on a free port."""
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_the_id_names_the_alert_the_event_and_its_time(fired: AlertTransition) -> None:
    assert transition_id(fired) == f"{fired.alert.alert_id}:firing:{to_ms(fired.alert.first_seen)}"


def test_the_notification_body_is_the_payload_with_its_id(fired: AlertTransition) -> None:
    body = json.loads(notification_body(fired))
    assert body.pop("transition_id") == transition_id(fired)
    assert body == fired.to_json()


def test_the_webhook_sends_the_id_in_the_body_and_as_idempotency_key(fired: AlertTransition,
                                                                     receiver: Receiver) -> None:
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    asyncio.run(WebhookChannel(url, "s3cret").send(fired))
    [(headers, body)] = receiver.posts
    assert headers["Idempotency-Key"] == body["transition_id"] == transition_id(fired)
    assert "X-Gulou-Signature" in headers
