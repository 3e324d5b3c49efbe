"""The WeCom (企业微信) group robot channel: markdown messages."""

from __future__ import annotations

from typing import Any, Self

from gulou.channels.base import ChannelContext
from gulou.channels.http import RobotChannel
from gulou.settings import Settings

# The robot takes at most 4096 bytes of content; stay clear of it without splitting a character.
CONTENT_BYTES = 4000


class WeComChannel(RobotChannel):
    """WeCom group robot, markdown msgtype."""

    name = "wecom"

    @classmethod
    def from_settings(cls, settings: Settings, context: ChannelContext) -> Self | None:
        """On when ``settings.wecom.webhook`` is set."""
        section = settings.wecom
        return cls(section.webhook.get_secret_value()) if section.webhook else None

    def markdown_body(self, title: str, text: str) -> dict[str, Any]:
        """WeCom markdown message (the robot shows no separate title)."""
        return {"msgtype": "markdown", "markdown": {"content": text.encode()[:CONTENT_BYTES].decode(errors="ignore")}}
