"""Shared test data for the alert workflow: engine payloads and queued items."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from gulou.workflow.model import AlertRecord, QueuedItem

T0 = datetime(2026, 5, 6, 1, 0, tzinfo=UTC)  # 09:00 Beijing time, a Wednesday


def payload(event: str = "firing", *, rule: str = "parking-tight", device: str = "pk-001", severity: str = "low",
            first_seen: datetime = T0, value: float = 0.95, limit: float = 0.9, site_name: str = "塔巷停车场",
            street: str = "鼓东街道", domain: str = "parking", exceedance: float | None = None,
            resolved_at: datetime | None = None, **extra: Any) -> dict[str, Any]:
    """An engine notification as ``AlertTransition.to_json()`` gives it."""
    last = resolved_at or first_seen
    return {
        "event": event, "alert_id": f"{rule}|{device}@{int(first_seen.timestamp() * 1000)}",
        "key": f"{rule}|{device}", "rule_id": rule, "kind": "threshold", "device_id": device,
        "site": f"site-{device}", "site_name": site_name, "street": street, "lat": 26.08, "lon": 119.29,
        "domain": domain, "severity": severity, "state": "resolved" if event == "resolved" else "firing",
        "value": value, "limit": limit,
        "exceedance": exceedance if exceedance is not None else (value - limit) / limit,
        "standard": "parking practice [M]", "message": f"{site_name}车位紧张", "message_en": "parking tight",
        "first_seen": first_seen.isoformat(), "last_seen": last.isoformat(),
        "resolved_at": resolved_at.isoformat() if resolved_at else None, "updates": 0, "source": "x", **extra,
    }


def record(**changes: Any) -> AlertRecord:
    """An alert record as the store would give it."""
    base: dict[str, Any] = {
        "id": 1, "alert_id": "parking-tight|pk-001@1", "rule_id": "parking-tight", "kind": "threshold",
        "device_id": "pk-001", "site": "site-pk-001", "site_name": "塔巷停车场", "street": "鼓东街道",
        "domain": "parking", "severity": "low", "condition": "firing", "first_seen": T0, "last_seen": T0,
        "updated_at": T0,
    }
    return AlertRecord.model_validate({**base, **changes})


def item(n: int, *, event: str = "firing", severity: str = "low", rule: str = "parking-tight",
         created: datetime = T0, **payload_changes: Any) -> QueuedItem:
    """A queued notification number ``n``."""
    body = payload(event, rule=rule, device=f"dev-{n:03d}", severity=severity, **payload_changes)
    return QueuedItem(id=n, channel="dingtalk", alert=n, event=event, severity=severity, rule_id=rule,
                      created_at=created, payload=body)


def minutes(n: float) -> timedelta:
    """A timedelta of n minutes."""
    return timedelta(minutes=n)
