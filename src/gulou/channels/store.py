"""The store channel: alerts and their history in the alert store, ``alerts`` lines in the time-series store."""

from __future__ import annotations

import asyncio
from typing import Any, Self

from gulou.channels.base import Channel, ChannelContext, DeliveryError
from gulou.rules.alert_store import AlertStore
from gulou.rules.alerts import AlertTransition
from gulou.settings import Settings
from gulou.timeutil import to_ms
from gulou.tsdb.line_protocol import encode_line
from gulou.tsdb.writer import LineWriter

ALERT_MEASUREMENT = "alerts"


def alert_line(transition: AlertTransition) -> str:
    """The ``alerts`` measurement line for one notification, at the time of its event."""
    a = transition.alert
    when = a.resolved_at if transition.event == "resolved" else (
        a.first_seen if transition.event == "firing" else a.last_seen)
    tags = {"rule_id": a.rule_id, "domain": a.domain, "severity": a.severity, "state": a.state,
            "street": a.street, "site": a.site, "device": a.device_id}
    fields: dict[str, Any] = {
        "value": None if a.value is None else float(a.value),
        "limit": None if a.limit is None else float(a.limit),
        "exceedance": None if a.exceedance is None else float(a.exceedance),
        "standard": a.standard, "message": a.message, "message_en": a.message_en,
    }
    return encode_line(ALERT_MEASUREMENT, tags, fields, to_ms(when or a.last_seen))


class StoreChannel(Channel):
    """Records the transition in the alert store (SQLite), then its line in InfluxDB when one is configured."""

    name = "store"
    writes_store = True

    def __init__(self, store: AlertStore | None, lines: LineWriter | None = None) -> None:
        self.store, self.lines = store, lines

    @classmethod
    def from_settings(cls, settings: Settings, context: ChannelContext) -> Self | None:
        """On when the service has an alert store or a line writer."""
        if context.store is None and context.lines is None:
            return None
        return cls(context.store, context.lines)

    async def send(self, transition: AlertTransition) -> None:
        """Write to SQLite, then InfluxDB."""
        try:
            if self.store is not None:
                await asyncio.to_thread(self.store.record, transition)
            if self.lines is not None:
                await asyncio.to_thread(self.lines.write_lines, [alert_line(transition)])
        except Exception as exc:
            raise DeliveryError(f"store write failed: {exc}") from exc
