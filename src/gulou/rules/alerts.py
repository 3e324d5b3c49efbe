"""Alert lifecycle: firing → resolved, one active alert per (rule, device or site), dedup and re-notify."""

from __future__ import annotations

import json
import math
import string
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from gulou.devices.registry import Device

State = Literal["firing", "resolved"]
Event = Literal["firing", "renotify", "resolved"]
LOWER_BOUND_OPS = ("<", "<=")


def exceedance(value: float | None, limit: float | None, op: str) -> float | None:
    """超标倍数: (value − limit)/limit for upper limits, (limit − value)/limit for lower-bound limits."""
    if value is None or limit is None or limit == 0 or not math.isfinite(value):
        return None
    if op in LOWER_BOUND_OPS:
        return (limit - value) / limit
    return (value - limit) / limit


class Alert(BaseModel):
    """One alert: what, where, how bad, since when (event time)."""

    model_config = ConfigDict(extra="forbid")

    alert_id: str
    key: str
    rule_id: str
    kind: str
    device_id: str
    site: str
    site_name: str
    street: str
    lat: float
    lon: float
    domain: str
    severity: str
    state: State
    value: float | None
    limit: float | None
    exceedance: float | None
    standard: str
    message: str
    message_en: str
    first_seen: datetime
    last_seen: datetime
    resolved_at: datetime | None = None
    notified_at: datetime | None = None
    updates: int = 0

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (ISO timestamps); ``source`` mirrors ``standard`` for readers using that name."""
        data = self.model_dump(mode="json")
        data["source"] = self.standard
        return data


@dataclass(frozen=True)
class AlertTransition:
    """A change worth notifying: an alert fired, is re-notified while still firing, or resolved."""

    event: Event
    alert: Alert

    def to_json(self) -> dict[str, Any]:
        """Payload for every delivery channel."""
        return {"event": self.event, **self.alert.to_json()}

    @cached_property
    def body(self) -> bytes:
        """``to_json()`` as UTF-8 JSON, encoded once however many channels send it."""
        return json.dumps(self.to_json(), ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> AlertTransition:
        """Rebuild a transition from ``to_json()`` (a notification kept on disk for redelivery)."""
        data = {k: v for k, v in payload.items() if k not in ("event", "source")}
        return cls(payload["event"], Alert.model_validate(data))


class _SafeFormat(string.Formatter):
    def format_field(self, value: Any, format_spec: str) -> str:
        if value is None:
            return "-"
        try:
            return str(super().format_field(value, format_spec))
        except (ValueError, TypeError):
            return str(value)


_FORMATTER = _SafeFormat()


def render(template: str, fields: dict[str, Any]) -> str:
    """Fill a message template; a missing or unformattable value renders as '-' instead of raising."""
    try:
        return _FORMATTER.vformat(template, (), _Defaulting(fields))
    except (KeyError, IndexError, AttributeError, ValueError):
        return template


class _Defaulting(dict[str, Any]):
    def __missing__(self, key: str) -> None:
        return None


@dataclass(frozen=True)
class Signal:
    """What one rule evaluation says about one subject: fire, clear, or neither (hold the state)."""

    verdict: Literal["fire", "clear", "hold"]
    ts: datetime
    value: float | None = None
    limit: float | None = None
    op: str = ">"
    value_label: str | None = None
    limit_label: str | None = None
    exceedance: float | None = None


class AlertBook:
    """Active alerts by key; turns signals into transitions with de-duplication and re-notify."""

    def __init__(self, default_renotify_s: float | None = 3600.0) -> None:
        self.active: dict[str, Alert] = {}
        self.default_renotify_s = default_renotify_s
        self._pending: dict[str, tuple[Any, dict[str, Any]]] = {}

    def apply(self, rule: Any, device: Device, key: str, signal: Signal, site_level: bool = False) -> \
            AlertTransition | None:
        """Update the alert for ``key`` from a signal; return the transition to notify, if any."""
        current = self.active.get(key)
        if signal.verdict == "fire":
            fields = self._fields(rule, device, signal, site_level)
            if current is None:
                alert = Alert(
                    alert_id=f"{key}@{int(signal.ts.timestamp() * 1000)}", key=key, rule_id=rule.id,
                    kind=rule.kind, device_id=device.id, site=device.site.id, site_name=device.site.name,
                    street=device.street, lat=device.site.lat if site_level else device.lat,
                    lon=device.site.lon if site_level else device.lon, domain=rule.domain,
                    severity=rule.severity, state="firing", value=signal.value, limit=signal.limit,
                    exceedance=fields["exceedance"], standard=rule.source,
                    message=render(rule.message, fields), message_en=render(rule.message_en, fields),
                    first_seen=signal.ts, last_seen=signal.ts, notified_at=signal.ts,
                )
                self.active[key] = alert
                return AlertTransition("firing", alert.model_copy())
            self._update(current, rule, signal, fields)
            renotify = rule.renotify_s or self.default_renotify_s
            if renotify and current.notified_at is not None and \
                    (signal.ts - current.notified_at).total_seconds() >= renotify:
                current.notified_at = signal.ts
                self._rerender(current)
                return AlertTransition("renotify", current.model_copy())
            return None
        if current is None:
            return None
        if signal.verdict == "hold":
            if signal.ts > current.last_seen:
                current.last_seen = signal.ts
                current.updates += 1
            return None
        self._pending.pop(current.key, None)
        current.state = "resolved"
        current.resolved_at = max(signal.ts, current.last_seen)
        current.last_seen = current.resolved_at
        # How it ended, not the firing text again: the value it went back to and how long it lasted.
        if signal.value is not None:
            current.value, current.limit = signal.value, signal.limit if signal.limit is not None else current.limit
            current.exceedance = exceedance(current.value, current.limit, signal.op)
        current.message, current.message_en = resolved_messages(current)
        del self.active[key]
        return AlertTransition("resolved", current)

    def _update(self, alert: Alert, rule: Any, signal: Signal, fields: dict[str, Any]) -> None:
        if signal.ts < alert.last_seen:
            return
        alert.last_seen = signal.ts
        alert.value, alert.limit, alert.exceedance = signal.value, signal.limit, fields["exceedance"]
        # Messages are rendered when a notification goes out, not on every de-duplicated evaluation.
        self._pending[alert.key] = (rule, fields)
        alert.updates += 1

    def _rerender(self, alert: Alert) -> None:
        pending = self._pending.pop(alert.key, None)
        if pending is not None:
            rule, fields = pending
            alert.message, alert.message_en = render(rule.message, fields), render(rule.message_en, fields)

    @staticmethod
    def _fields(rule: Any, device: Device, signal: Signal, site_level: bool) -> dict[str, Any]:
        exc = signal.exceedance if signal.exceedance is not None else exceedance(
            signal.value, signal.limit, signal.op)
        return {
            "rule": rule.id, "device": device.site.id if site_level else device.id,
            "device_name": device.site.name if site_level else device.name, "site": device.site.id,
            "site_name": device.site.name, "street": device.street, "domain": rule.domain,
            "metric": getattr(rule, "metric", None), "value": signal.value, "limit": signal.limit,
            "value_label": signal.value_label if signal.value_label is not None else signal.value,
            "limit_label": signal.limit_label if signal.limit_label is not None else signal.limit,
            "exceedance": exc, "exceedance_pct": None if exc is None else exc * 100, "severity": rule.severity,
        }

    def state(self) -> list[dict[str, Any]]:
        """Active alerts as JSON (for the engine snapshot)."""
        for alert in self.active.values():
            self._rerender(alert)
        return [a.model_dump(mode="json") for a in self.active.values()]

    def restore(self, rows: list[dict[str, Any]]) -> None:
        """Reload active alerts saved by ``state()``."""
        self.active = {row["key"]: Alert.model_validate(row) for row in rows}


def _span(seconds: float) -> tuple[int, int]:
    minutes = max(0, int(seconds)) // 60
    return divmod(minutes, 60)


def resolved_messages(alert: Alert) -> tuple[str, str]:
    """Chinese and English text of a resolved alert: where, which rule, the value it went back to, how long."""
    hours, minutes = _span(((alert.resolved_at or alert.last_seen) - alert.first_seen).total_seconds())
    zh_span = f"{hours}小时{minutes}分" if hours else f"{minutes}分"
    en_span = f"{hours} h {minutes} min" if hours else f"{minutes} min"
    value = "-" if alert.value is None else f"{alert.value:.4g}"
    limit = "-" if alert.limit is None else f"{alert.limit:.4g}"
    return (f"{alert.site_name} {alert.rule_id} 已恢复：数值回到{value}（限值{limit}），持续{zh_span}",
            f"{alert.site_name} {alert.rule_id} resolved: value back to {value} (limit {limit}) after {en_span}")


def now_utc() -> datetime:
    """Current wall-clock time, aware UTC."""
    return datetime.now(UTC)
