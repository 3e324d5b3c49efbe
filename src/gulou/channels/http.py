"""HTTP delivery shared by the webhook and the group robots: a JSON POST off the event loop, robot markdown."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from abc import abstractmethod
from typing import Any

from gulou.channels.base import Channel, DeliveryError
from gulou.rules.alerts import AlertTransition
from gulou.timeutil import beijing
from gulou.workflow.render import escape

SEVERITY_ZH = {"informational": "提示", "low": "低", "medium": "中", "high": "高", "critical": "严重"}
EVENT_ZH = {"firing": "告警", "renotify": "持续告警", "resolved": "已恢复"}
TIMEOUT_S = 5.0


def post_json(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> bytes:
    """POST a JSON body; the answer's body, or ``DeliveryError`` for an HTTP error or no connection."""
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json; charset=utf-8", **headers})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return bytes(response.read())
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DeliveryError(f"unreachable: {getattr(exc, 'reason', exc)}") from None


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def markdown(transition: AlertTransition) -> tuple[str, str]:
    """Title and markdown text of a notification for group robots (times in Beijing time)."""
    a = transition.alert
    event = EVENT_ZH.get(transition.event, transition.event)
    title = f"[{event}] {a.message}"
    # Names and messages come from the registry and rule files: escaped so they cannot inject markup.
    lines = [
        f"### {event}：{escape(a.message)}",
        f"- 规则：{escape(a.rule_id)}（{SEVERITY_ZH.get(a.severity, a.severity)}）",
        f"- 地点：{escape(a.street)} {escape(a.site_name)}（{escape(a.device_id)}）",
        f"- 数值：{_num(a.value)}，限值：{_num(a.limit)}，超标倍数：{_num(a.exceedance)}",
        f"- 依据：{escape(a.standard)}",
        f"- 首次：{beijing(a.first_seen)}，最近：{beijing(a.last_seen)}",
        f"> {escape(a.message_en)}",
    ]
    return title[:60], "\n".join(lines)


class RobotChannel(Channel):
    """A group robot: POST a message built by ``body``; a 200 answer with a non-zero errcode is a refusal."""

    def __init__(self, url: str, secret: str | None = None, timeout_s: float = TIMEOUT_S) -> None:
        self.url, self.secret, self.timeout_s = url, secret, timeout_s

    @abstractmethod
    def markdown_body(self, title: str, text: str) -> dict[str, Any]:
        """The robot's markdown message for a title and text."""

    def body(self, transition: AlertTransition) -> dict[str, Any]:
        """The robot's message for one notification."""
        return self.markdown_body(*markdown(transition))

    def target(self) -> str:
        """Where to POST (a robot may sign its URL per request)."""
        return self.url

    async def send(self, transition: AlertTransition) -> None:
        """POST the robot message."""
        await self.post(self.body(transition))

    async def send_markdown(self, title: str, text: str) -> None:
        """POST a plain markdown message (the daily report push); ``DeliveryError`` when it does not go out."""
        await self.post(self.markdown_body(title, text))

    async def post(self, body: dict[str, Any]) -> None:
        """POST one message body; a 200 answer with a non-zero errcode is a refusal."""
        data = json.dumps(body, ensure_ascii=False).encode()
        answer = await asyncio.to_thread(post_json, self.target(), data, {}, self.timeout_s)
        try:
            code = json.loads(answer or b"{}").get("errcode", 0)
        except (ValueError, AttributeError):
            code = 0
        if code:
            raise DeliveryError(f"{self.name} robot refused the message: errcode {code}")
