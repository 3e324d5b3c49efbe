"""Rendered robot messages to DingTalk and WeCom; one table of senders by channel name."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import Any, Self

import httpx

from gulou.settings import Settings
from gulou.workflow.render import RobotMessage

TIMEOUT_S = 5.0
# WeCom takes at most 4096 bytes of markdown content; stay clear of it without splitting a character.
WECOM_CONTENT_BYTES = 4000


class SendError(Exception):
    """The robot or endpoint did not take the message."""


class MessageSender(ABC):
    """A channel that carries rendered messages; built from its settings section, None when not configured."""

    name = "sender"

    def __init__(self, url: str, secret: str | None = None, timeout_s: float = TIMEOUT_S) -> None:
        self.url, self.secret, self.timeout_s = url, secret, timeout_s

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: Settings) -> Self | None:
        """The sender as configured, or None."""

    @abstractmethod
    def request(self, message: RobotMessage) -> tuple[str, bytes, dict[str, str]]:
        """URL, body and extra headers of the request for one message."""

    async def send_message(self, message: RobotMessage) -> None:
        """POST the message; an HTTP error or a robot's non-zero errcode raises ``SendError``."""
        url, body, headers = self.request(message)
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                answer = await client.post(url, content=body, headers={
                    "Content-Type": "application/json; charset=utf-8", **headers})
        except httpx.HTTPError as exc:
            raise SendError(f"{self.name}: unreachable: {exc}") from None
        if answer.status_code >= 300:
            raise SendError(f"{self.name}: HTTP {answer.status_code}")
        try:
            code = json.loads(answer.content or b"{}").get("errcode", 0)
        except (ValueError, AttributeError):
            code = 0
        if code:
            raise SendError(f"{self.name}: robot refused the message: errcode {code}")


def _json(data: dict[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode()


class DingTalkSender(MessageSender):
    """DingTalk robot: markdown with @phone in the text and ``at.atMobiles``; signed URL when a secret is set."""

    name = "dingtalk"

    @classmethod
    def from_settings(cls, settings: Settings) -> Self | None:
        """On when ``settings.dingtalk.webhook`` is set."""
        section = settings.dingtalk
        if not section.webhook:
            return None
        return cls(section.webhook.get_secret_value(), section.secret.get_secret_value() if section.secret else None)

    def request(self, message: RobotMessage) -> tuple[str, bytes, dict[str, str]]:
        """The markdown message; DingTalk only notifies mentioned phones that also appear in the text."""
        from gulou.channels.dingtalk import dingtalk_signed_url

        phones = [p.phone for p in message.mentions if p.phone]
        text = message.text + ("\n\n" + " ".join(f"@{p}" for p in phones) if phones else "")
        body = {"msgtype": "markdown", "markdown": {"title": message.title, "text": text},
                "at": {"atMobiles": phones, "isAtAll": False}}
        url = dingtalk_signed_url(self.url, self.secret) if self.secret else self.url
        return url, _json(body), {}


class WeComSender(MessageSender):
    """WeCom robot: markdown, mentions as ``<@userid>`` in the content."""

    name = "wecom"

    @classmethod
    def from_settings(cls, settings: Settings) -> Self | None:
        """On when ``settings.wecom.webhook`` is set."""
        section = settings.wecom
        return cls(section.webhook.get_secret_value()) if section.webhook else None

    def request(self, message: RobotMessage) -> tuple[str, bytes, dict[str, str]]:
        """The markdown message, cut to the robot's size limit."""
        users = [p.wecom_user_id for p in message.mentions if p.wecom_user_id]
        content = message.text + ("\n" + " ".join(f"<@{u}>" for u in users) if users else "")
        content = content.encode()[:WECOM_CONTENT_BYTES].decode(errors="ignore")
        return self.url, _json({"msgtype": "markdown", "markdown": {"content": content}}), {}


# Adding a channel for the workflow's messages is one class and one line here.
SENDERS: dict[str, type[MessageSender]] = {
    "dingtalk": DingTalkSender,
    "wecom": WeComSender,
}


def senders_from_settings(settings: Settings) -> dict[str, MessageSender]:
    """Every configured sender by channel name."""
    built = {name: cls.from_settings(settings) for name, cls in SENDERS.items()}
    return {name: sender for name, sender in built.items() if sender is not None}
