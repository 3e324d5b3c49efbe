"""The log channel: one line per notification, always on."""

from __future__ import annotations

import logging
from typing import Self

from gulou.channels.base import Channel, ChannelContext
from gulou.rules.alerts import AlertTransition
from gulou.settings import Settings

log = logging.getLogger(__name__)


class LogChannel(Channel):
    """Writes every notification to the log (WARNING while firing, INFO once resolved)."""

    name = "log"

    @classmethod
    def from_settings(cls, settings: Settings, context: ChannelContext) -> Self | None:
        """Always on."""
        return cls()

    async def send(self, transition: AlertTransition) -> None:
        """Log one line."""
        a = transition.alert
        level = logging.WARNING if transition.event != "resolved" else logging.INFO
        log.log(level, "alert %s %s [%s] %s", transition.event, a.rule_id, a.device_id, a.message_en)
