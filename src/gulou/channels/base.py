"""The alert channel boundary: a ``Channel`` delivers one ``AlertTransition`` or raises ``DeliveryError``."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Self

from gulou.rules.alert_store import AlertStore
from gulou.rules.alerts import AlertTransition
from gulou.settings import BrokerAddress, Settings
from gulou.timeutil import to_ms
from gulou.tsdb.writer import LineWriter


class DeliveryError(Exception):
    """A channel could not deliver a notification (the worker retries, then keeps it for later)."""


@dataclass(frozen=True)
class ChannelContext:
    """What the rules service has besides settings: its alert store, line writer and broker."""

    store: AlertStore | None = None
    lines: LineWriter | None = None
    broker: BrokerAddress | None = None
    # The engine's clock (event time in replays), for channels that act on time (escalation).
    clock: Callable[[], datetime] | None = None


class Channel(ABC):
    """Somewhere alerts go. ``send`` returns once delivered, else raises."""

    name: str = "channel"
    # A channel that writes the alert store cannot keep its failures in that same store.
    writes_store: bool = False

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: Settings, context: ChannelContext) -> Self | None:
        """The channel as configured, or ``None`` when its section (or context) leaves it off."""

    @abstractmethod
    async def send(self, transition: AlertTransition) -> None:
        """Deliver one notification."""

    async def run(self) -> None:
        """Hold what the channel needs between sends (a connection); most need nothing."""
        return

    def ready(self) -> bool:
        """Whether a send could go out now (a connected channel says no while it is disconnected)."""
        return True


def describe(transition: AlertTransition) -> str:
    """How logs name a notification."""
    return f"{transition.event} {transition.alert.alert_id}"


def transition_id(transition: AlertTransition) -> str:
    """The same for the same change of the same alert, whichever process computes it: receivers dedupe by it."""
    a = transition.alert
    at = {"firing": a.first_seen, "renotify": a.notified_at, "resolved": a.resolved_at}[transition.event] \
        or a.last_seen
    return f"{a.alert_id}:{transition.event}:{to_ms(at)}"


def notification_body(transition: AlertTransition) -> bytes:
    """The JSON notification with its ``transition_id``, as the webhook and MQTT channels send it."""
    return json.dumps({**transition.to_json(), "transition_id": transition_id(transition)},
                      ensure_ascii=False).encode()
