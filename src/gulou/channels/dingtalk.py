"""The DingTalk (钉钉) group robot channel: markdown messages, optionally to a signed URL (加签)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse
from typing import Any, Self

from gulou.channels.base import ChannelContext
from gulou.channels.http import RobotChannel
from gulou.settings import Settings


def dingtalk_signed_url(url: str, secret: str, now_ms: int | None = None) -> str:
    """DingTalk robot "加签": append timestamp and sign = base64(HMAC-SHA256(secret, 'ts\\nsecret'))."""
    ts = str(now_ms if now_ms is not None else int(time.time() * 1000))
    digest = hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()
    sign = urllib.parse.quote_plus(base64.b64encode(digest).decode())
    return f"{url}{'&' if '?' in url else '?'}timestamp={ts}&sign={sign}"


class DingTalkChannel(RobotChannel):
    """DingTalk group robot, markdown msgtype, signed URL when a secret is configured."""

    name = "dingtalk"

    @classmethod
    def from_settings(cls, settings: Settings, context: ChannelContext) -> Self | None:
        """On when ``settings.dingtalk.webhook`` is set."""
        section = settings.dingtalk
        if not section.webhook:
            return None
        return cls(section.webhook.get_secret_value(), section.secret.get_secret_value() if section.secret else None)

    def markdown_body(self, title: str, text: str) -> dict[str, Any]:
        """DingTalk markdown message."""
        return {"msgtype": "markdown", "markdown": {"title": title, "text": text}}

    def target(self) -> str:
        """The URL, signed when a secret is configured."""
        return dingtalk_signed_url(self.url, self.secret) if self.secret else self.url
