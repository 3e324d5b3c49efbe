"""DingTalk and WeCom channels against a real HTTP endpoint that answers like a group robot."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from gulou.channels.base import ChannelContext, DeliveryError
from gulou.channels.dingtalk import DingTalkChannel
from gulou.channels.wecom import WeComChannel
from gulou.rules.alerts import AlertTransition
from gulou.settings import Settings
from tests.servers import free_port

pytestmark = pytest.mark.integration


class Robot:
    """Records each POST (path with query, JSON body) and answers ``{"errcode": <next code>}``."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.codes: list[int] = []
        robot = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                robot.posts.append((self.path, body))
                answer = json.dumps({"errcode": robot.codes.pop(0) if robot.codes else 0}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/robot/send?access_token=tok"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def robot() -> Iterator[Robot]:
    """A robot endpoint on a free port."""
    server = Robot()
    yield server
    server.close()


def test_dingtalk_posts_markdown_to_a_signed_url(robot: Robot, fired: AlertTransition) -> None:
    settings = Settings(dingtalk_webhook=robot.url, dingtalk_secret="SEC-test")
    channel = DingTalkChannel.from_settings(settings, ChannelContext())
    assert channel is not None
    asyncio.run(channel.send(fired))
    (path, body), = robot.posts
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    assert query["access_token"] == ["tok"]
    digest = hmac.new(b"SEC-test", f"{query['timestamp'][0]}\nSEC-test".encode(), hashlib.sha256).digest()
    assert query["sign"] == [base64.b64encode(digest).decode()]
    assert body["msgtype"] == "markdown" and "疑似起火" in body["markdown"]["title"]


def test_a_robot_refusal_is_a_delivery_error(robot: Robot, fired: AlertTransition) -> None:
    channel = WeComChannel.from_settings(Settings(wecom_webhook=robot.url), ChannelContext())
    assert channel is not None
    robot.codes = [93000]
    with pytest.raises(DeliveryError, match="errcode 93000"):
        asyncio.run(channel.send(fired))
    asyncio.run(channel.send(fired))
    assert [body["msgtype"] for _, body in robot.posts] == ["markdown", "markdown"]
    assert "bin-001-rec" in robot.posts[1][1]["markdown"]["content"]


def test_an_unreachable_robot_is_a_delivery_error(fired: AlertTransition) -> None:
    channel = WeComChannel(f"http://127.0.0.1:{free_port()}/send", timeout_s=2)
    with pytest.raises(DeliveryError, match="unreachable"):
        asyncio.run(channel.send(fired))
