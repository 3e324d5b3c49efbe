"""The workflow's records: an alert with its handling state, its history, silences, work orders, queued items."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

Condition = Literal["firing", "resolved"]
Status = Literal["new", "escalated", "acknowledged", "assigned", "closed"]
AssigneeKind = Literal["person", "team"]
WorkOrderStatus = Literal["pending", "sent", "accepted", "on_site", "done", "failed"]
SEVERITIES = ("informational", "low", "medium", "high", "critical")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
# Statuses in which nobody has reacted yet, so escalation still applies.
UNHANDLED: tuple[Status, ...] = ("new", "escalated")


class WorkflowError(ValueError):
    """An action that the alert's current state does not allow."""


class NotFound(WorkflowError):
    """No such alert, silence or work order."""


class Conflict(WorkflowError):
    """Someone else changed the record first; the message says who and when."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AlertRecord(_Model):
    """One alert as the duty officer sees it: what the engine says plus who did what about it."""

    id: int
    alert_id: str
    rule_id: str
    kind: str
    device_id: str
    site: str
    site_name: str
    street: str
    domain: str
    severity: str
    condition: Condition
    status: Status = "new"
    value: float | None = None
    limit: float | None = None
    exceedance: float | None = None
    standard: str = ""
    message: str = ""
    message_en: str = ""
    first_seen: AwareDatetime
    last_seen: AwareDatetime
    resolved_at: AwareDatetime | None = None
    acked_by: str | None = None
    acked_at: AwareDatetime | None = None
    ack_note: str | None = None
    assignee: str | None = None
    assignee_kind: AssigneeKind | None = None
    assigned_by: str | None = None
    assigned_at: AwareDatetime | None = None
    escalation_level: int = 0
    escalated_at: AwareDatetime | None = None
    closed_by: str | None = None
    closed_at: AwareDatetime | None = None
    close_note: str | None = None
    silence_id: int | None = None
    work_order_id: str | None = None
    work_order_status: WorkOrderStatus | None = None
    version: int = 1
    updated_at: AwareDatetime
    updated_by: str | None = None


class HistoryEntry(_Model):
    """One line of an alert's history: engine events, operator actions, escalations, notifications."""

    id: int
    alert: int
    at: AwareDatetime
    actor: str
    action: str
    note: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class SilenceScope(_Model):
    """What a silence covers: every field given must match (device, site, street, rule, domain)."""

    device_id: str | None = Field(default=None, max_length=200)
    site: str | None = Field(default=None, max_length=200)
    street: str | None = Field(default=None, max_length=200)
    rule_id: str | None = Field(default=None, max_length=200)
    domain: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _not_everything(self) -> SilenceScope:
        if not any(getattr(self, name) for name in type(self).model_fields):
            raise ValueError("a silence needs at least one of device_id, site, street, rule_id, domain")
        return self

    def matches(self, alert: AlertRecord) -> bool:
        """True when every given field equals the alert's."""
        return all(want is None or getattr(alert, name) == want for name, want in self.model_dump().items())


class Silence(_Model):
    """A maintenance window: matching alerts are recorded but not notified between ``starts_at`` and ``ends_at``."""

    id: int
    scope: SilenceScope
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    reason: str
    created_by: str
    created_at: AwareDatetime
    updated_by: str | None = None
    updated_at: AwareDatetime | None = None
    cancelled_by: str | None = None
    cancelled_at: AwareDatetime | None = None

    def active(self, at: datetime) -> bool:
        """In force at ``at`` (and not cancelled)."""
        return self.cancelled_at is None and self.starts_at <= at < self.ends_at


class WorkOrder(_Model):
    """A 工单 raised for an alert in the district's dispatch system."""

    id: str
    alert: int
    status: WorkOrderStatus
    attempts: int = 0
    last_error: str | None = None
    note: str | None = None
    photo_url: str | None = None
    created_at: AwareDatetime
    updated_at: AwareDatetime


class QueuedItem(_Model):
    """One notification waiting for (or sent through) a channel's rate limit and grouping."""

    id: int
    channel: str
    alert: int
    event: str
    severity: str
    rule_id: str
    created_at: AwareDatetime
    payload: dict[str, Any]
    attempts: int = 0
    next_attempt_at: AwareDatetime | None = None
