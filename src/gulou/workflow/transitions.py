"""Pure state changes of an alert: what an action sets and what its history line says, or why it is refused."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gulou.timeutil import beijing
from gulou.workflow.model import UNHANDLED, AlertRecord, AssigneeKind, Conflict, WorkflowError

# Fields of the engine's notification payload that the workflow keeps as columns.
ENGINE_FIELDS = ("alert_id", "rule_id", "kind", "device_id", "site", "site_name", "street", "domain", "severity",
                 "value", "limit", "exceedance", "standard", "message", "message_en", "first_seen", "last_seen",
                 "resolved_at")
ENGINE_ACTIONS = {"firing": "fired", "renotify": "still_firing", "resolved": "resolved"}
SYSTEM = "system"


@dataclass(frozen=True)
class Change:
    """Columns to set on the alert, and the history line that records it."""

    values: dict[str, Any]
    action: str
    actor: str
    note: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    # Operator actions bump the version (optimistic locking); engine and escalation updates do not.
    bumps_version: bool = True


def apply(alert: AlertRecord, change: Change) -> AlertRecord:
    """The alert after the change (for pure tests and for building replies)."""
    version = alert.version + 1 if change.bumps_version else alert.version
    return alert.model_copy(update={**change.values, "version": version})


def _who(name: str | None, at: datetime | None) -> str:
    return f"{name or '?'} at {beijing(at) if at else '?'}"


def _check_open(alert: AlertRecord) -> None:
    if alert.status == "closed":
        raise Conflict(f"alert {alert.id} was closed by {_who(alert.closed_by, alert.closed_at)}")


def acknowledge(alert: AlertRecord, actor: str, note: str | None, now: datetime) -> Change:
    """Acknowledge: someone has seen it and is on it; escalation stops."""
    _check_open(alert)
    if alert.acked_by is not None:
        raise Conflict(f"alert {alert.id} was already acknowledged by {_who(alert.acked_by, alert.acked_at)}")
    values: dict[str, Any] = {"acked_by": actor, "acked_at": now, "ack_note": note, "updated_at": now,
                              "updated_by": actor}
    if alert.status in UNHANDLED:
        values["status"] = "acknowledged"
    return Change(values, "acknowledged", actor, note)


def assign(alert: AlertRecord, actor: str, assignee: str, kind: AssigneeKind, note: str | None,
           now: datetime) -> Change:
    """Assign to a person or a team (again, to hand it over); escalation stops."""
    _check_open(alert)
    if not assignee.strip():
        raise WorkflowError("assign needs a person or team")
    if alert.assignee == assignee and alert.assignee_kind == kind:
        raise Conflict(f"alert {alert.id} is already assigned to {assignee} by "
                       f"{_who(alert.assigned_by, alert.assigned_at)}")
    values = {"status": "assigned", "assignee": assignee, "assignee_kind": kind, "assigned_by": actor,
              "assigned_at": now, "updated_at": now, "updated_by": actor}
    return Change(values, "assigned", actor, note, {"assignee": assignee, "kind": kind,
                                                   "previous": alert.assignee})


def close(alert: AlertRecord, actor: str, note: str | None, now: datetime) -> Change:
    """销号: close a resolved alert; a firing one only with a note that says why."""
    _check_open(alert)
    if alert.condition == "firing" and not (note and note.strip()):
        raise WorkflowError(f"alert {alert.id} is still firing: closing it anyway needs a note saying why")
    values = {"status": "closed", "closed_by": actor, "closed_at": now, "close_note": note, "updated_at": now,
              "updated_by": actor}
    return Change(values, "closed", actor, note, {"condition": alert.condition})


def escalate(alert: AlertRecord, level: int, now: datetime, notified: list[str]) -> Change | None:
    """Raise the escalation level of an unhandled alert; None when it no longer applies."""
    if alert.status not in UNHANDLED or alert.condition != "firing" or level <= alert.escalation_level:
        return None
    values = {"status": "escalated", "escalation_level": level, "escalated_at": now, "updated_at": now,
              "updated_by": SYSTEM}
    return Change(values, "escalated", SYSTEM, None, {"level": level, "notified": notified},
                  bumps_version=False)


def engine_values(payload: dict[str, Any]) -> dict[str, Any]:
    """Columns taken from an engine notification (``AlertTransition.to_json()``)."""
    values = {name: payload.get(name) for name in ENGINE_FIELDS}
    for name in ("first_seen", "last_seen", "resolved_at"):
        raw = values[name]
        if isinstance(raw, str):
            values[name] = datetime.fromisoformat(raw)
    values["condition"] = "resolved" if payload.get("event") == "resolved" else "firing"
    return values


def engine_change(payload: dict[str, Any], now: datetime) -> Change:
    """What an engine event sets on an existing alert (condition only; handling state is left alone)."""
    values = engine_values(payload)
    values.pop("alert_id")
    values["updated_at"] = now
    event = str(payload.get("event"))
    return Change(values, ENGINE_ACTIONS.get(event, event), SYSTEM, None,
                  {"value": payload.get("value"), "limit": payload.get("limit")}, bumps_version=False)


def work_order_change(alert: AlertRecord, work_order_id: str, status: str, note: str | None,
                      now: datetime, photo_url: str | None = None) -> Change:
    """A work-order progress report; ``done`` closes the alert (the report's note is the reason)."""
    actor = f"workorder:{work_order_id}"
    values: dict[str, Any] = {"work_order_status": status, "updated_at": now, "updated_by": actor}
    if status == "done" and alert.status != "closed":
        values.update(status="closed", closed_by=actor, closed_at=now,
                      close_note=note or "work order done")
    return Change(values, f"work_order_{status}", actor, note, {"work_order_id": work_order_id,
                                                              "photo_url": photo_url})
