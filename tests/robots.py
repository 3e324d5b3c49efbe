"""Local DingTalk- and WeCom-shaped robot endpoints that enforce a per-window message limit like the real ones."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# What the real robots answer past their limit (HTTP 200 with an errcode).
TOO_FAST = {"dingtalk": {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"},
            "wecom": {"errcode": 45009, "errmsg": "api freq out of limit"}}


@dataclass
class Robot:
    """One robot: what it accepted (with arrival times) and how often it refused for going too fast."""

    kind: str
    per_window: int = 20
    window_s: float = 60.0
    url: str = ""
    accepted: list[dict[str, Any]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    refused: int = 0
    malformed: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, body: dict[str, Any]) -> dict[str, Any]:
        """Accept or refuse one message as the real robot would."""
        now = time.monotonic()
        with self.lock:
            recent = [t for t in self.times if now - t < self.window_s]
            if len(recent) >= self.per_window:
                self.refused += 1
                return TOO_FAST[self.kind]
            problem = self._check(body)
            if problem:
                self.malformed.append(problem)
                return {"errcode": 40035, "errmsg": problem}
            self.times.append(now)
            self.accepted.append(body)
        return {"errcode": 0, "errmsg": "ok"}

    def _check(self, body: dict[str, Any]) -> str | None:
        if body.get("msgtype") != "markdown":
            return "msgtype must be markdown"
        md = body.get("markdown", {})
        if self.kind == "dingtalk" and not (md.get("title") and md.get("text")):
            return "markdown needs title and text"
        if self.kind == "wecom" and (not md.get("content") or len(md["content"].encode()) > 4096):
            return "markdown.content missing or over 4096 bytes"
        return None

    def texts(self) -> list[str]:
        """The markdown of every accepted message, in arrival order."""
        key = "text" if self.kind == "dingtalk" else "content"
        with self.lock:
            return [b["markdown"][key] for b in self.accepted]

    def max_in_any_window(self) -> int:
        """The most messages accepted within any window."""
        with self.lock:
            times = sorted(self.times)
        return max((sum(1 for u in times if t <= u < t + self.window_s) for t in times), default=0)


def _handler(robot: Robot) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                answer = robot.take(json.loads(raw))
            except ValueError:
                answer = {"errcode": 40001, "errmsg": "invalid json"}
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            return

    return Handler


@contextmanager
def robot_server(kind: str, per_window: int = 20, window_s: float = 60.0) -> Iterator[Robot]:
    """Run a robot endpoint on a free loopback port for the duration of the block."""
    robot = Robot(kind, per_window, window_s)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(robot))
    robot.url = f"http://127.0.0.1:{server.server_port}/robot/send?access_token=test"
    thread = threading.Thread(target=server.serve_forever, name=f"robot-{kind}", daemon=True)
    thread.start()
    try:
        yield robot
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)

