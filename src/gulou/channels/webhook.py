"""The webhook channel: POST the JSON notification, signed with an HMAC of the body."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from typing import Self

from gulou.channels.base import Channel, ChannelContext
from gulou.channels.http import TIMEOUT_S, post_json
from gulou.rules.alerts import AlertTransition
from gulou.settings import Settings

SIGNATURE_HEADER = "X-Gulou-Signature"


def sign_body(secret: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of the body>`` for the ``X-Gulou-Signature`` header."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookChannel(Channel):
    """POSTs the JSON body with ``X-Gulou-Signature: sha256=<hex HMAC>`` when a secret is configured."""

    name = "webhook"

    def __init__(self, url: str, secret: str | None, timeout_s: float = TIMEOUT_S) -> None:
        self.url, self.secret, self.timeout_s = url, secret, timeout_s

    @classmethod
    def from_settings(cls, settings: Settings, context: ChannelContext) -> Self | None:
        """On when ``settings.webhook.url`` is set."""
        section = settings.webhook
        if not section.url:
            return None
        return cls(section.url, section.secret.get_secret_value() if section.secret else None)

    async def send(self, transition: AlertTransition) -> None:
        """POST one notification."""
        body = transition.body
        headers = {SIGNATURE_HEADER: sign_body(self.secret, body)} if self.secret else {}
        await asyncio.to_thread(post_json, self.url, body, headers, self.timeout_s)
