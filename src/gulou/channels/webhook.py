"""The webhook channel: POST the JSON notification, signed with an HMAC over a timestamp and the body.

Every POST carries the transition's deterministic id (``transition_id`` in the body, ``Idempotency-Key``
header): a takeover can resend a notification that was delivered just before its worker died.
"""

from __future__ import annotations

import asyncio
from typing import Self

from gulou.channels.base import Channel, ChannelContext, notification_body, transition_id
from gulou.channels.http import TIMEOUT_S, post_json
from gulou.rules.alerts import AlertTransition
from gulou.settings import Settings
from gulou.workflow.signing import signed_headers


class WebhookChannel(Channel):
    """POSTs the JSON body; with a secret, ``X-Gulou-Timestamp`` and ``X-Gulou-Signature`` (HMAC of both)."""

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
        body = notification_body(transition)
        # Signed at each attempt: a redelivery carries a fresh timestamp, a captured request goes stale.
        headers = signed_headers(self.secret, body) if self.secret else {}
        headers["Idempotency-Key"] = transition_id(transition)
        await asyncio.to_thread(post_json, self.url, body, headers, self.timeout_s)
