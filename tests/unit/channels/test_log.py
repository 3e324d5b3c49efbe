"""The log channel: a warning while an alert fires, information once it resolves."""

from __future__ import annotations

import asyncio
import logging

import pytest

from gulou.channels.base import ChannelContext
from gulou.channels.log import LogChannel
from gulou.rules.alerts import AlertTransition
from gulou.settings import Settings


def test_log_levels_follow_the_event(fired: AlertTransition, caplog: pytest.LogCaptureFixture) -> None:
    channel = LogChannel.from_settings(Settings(), ChannelContext())
    assert channel is not None
    resolved = AlertTransition("resolved", fired.alert.model_copy(update={"state": "resolved"}))
    with caplog.at_level(logging.INFO, logger="gulou.channels.log"):
        asyncio.run(channel.send(fired))
        asyncio.run(channel.send(resolved))
    assert [(r.levelno, r.getMessage().split(" ")[1]) for r in caplog.records] == [
        (logging.WARNING, "firing"), (logging.INFO, "resolved")]
    assert "t-rule [bin-001-rec]" in caplog.records[0].getMessage()
