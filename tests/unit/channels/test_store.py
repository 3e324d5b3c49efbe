"""The store channel hands the alert store the very transition it was given."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path

import pytest

from gulou.channels.base import ChannelContext, DeliveryError
from gulou.channels.store import StoreChannel
from gulou.rules.alert_store import AlertStore
from gulou.rules.alerts import AlertTransition
from gulou.settings import Settings


class Recording(AlertStore):
    """An alert store that also remembers what it was asked to record."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.recorded: list[AlertTransition] = []

    def record(self, transition: AlertTransition) -> None:
        self.recorded.append(transition)
        super().record(transition)


class Down:
    """A line writer whose server is unreachable."""

    def write_lines(self, lines: Iterable[str]) -> None:
        raise ConnectionError("connection refused")


def test_the_transition_is_recorded_as_given(tmp_path: Path, fired: AlertTransition) -> None:
    store = Recording(tmp_path / "gulou.db")
    channel = StoreChannel.from_settings(Settings(), ChannelContext(store=store))
    assert channel is not None
    asyncio.run(channel.send(fired))
    assert len(store.recorded) == 1 and store.recorded[0] is fired
    assert store.alerts()[0]["alert_id"] == fired.alert.alert_id
    store.close()


def test_a_failed_line_write_is_a_delivery_error(tmp_path: Path, fired: AlertTransition) -> None:
    store = AlertStore(tmp_path / "gulou.db")
    channel = StoreChannel(store, Down())
    with pytest.raises(DeliveryError, match="connection refused"):
        asyncio.run(channel.send(fired))
    store.close()


def test_no_store_and_no_line_writer_leaves_the_channel_off() -> None:
    assert StoreChannel.from_settings(Settings(), ChannelContext()) is None
