"""Request and response bodies of the API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from gulou.workflow.dispatch import WorkOrderCallback
from gulou.workflow.model import AlertRecord, AssigneeKind, HistoryEntry, Silence, SilenceScope, WorkOrder

# No NUL characters: neither database keeps them in text.
Text = Annotated[str, StringConstraints(max_length=2000, pattern=r"^[^\x00]*$")]


def _iso_only(value: Any) -> Any:
    # Numbers would be read as Unix times; a typo should be refused rather than land in 1970.
    if not isinstance(value, str | datetime):
        raise ValueError("expected an ISO 8601 date and time with its UTC offset")
    return value


When = Annotated[AwareDatetime, BeforeValidator(_iso_only)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[^\x00]*\S[^\x00]*$")]

__all__ = ["AckIn", "AlertDetail", "AssignIn", "CloseIn", "Problem", "SilenceIn", "SilencePatch",
           "WorkOrderCallback"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AckIn(_In):
    """Acknowledge: I have seen it and I am on it."""

    note: Text | None = None
    version: int | None = Field(default=None, ge=1, le=2**31 - 1,
                                description="The version you read; a different current version is a conflict.")


class AssignIn(_In):
    """Assign to a person or a team."""

    assignee: Name
    kind: AssigneeKind = "person"
    note: Text | None = None
    version: int | None = Field(default=None, ge=1, le=2**31 - 1)


class CloseIn(_In):
    """销号: close; a still-firing alert needs a note saying why."""

    note: Text | None = None
    version: int | None = Field(default=None, ge=1, le=2**31 - 1)


class SilenceIn(_In):
    """A maintenance window: what it covers (at least one of the five), when, and why."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"anyOf": [
        {"required": [name], "properties": {name: {"type": "string"}}}
        for name in ("device_id", "site", "street", "rule_id", "domain")]})

    device_id: Name | None = None
    site: Name | None = None
    street: Name | None = None
    rule_id: Name | None = None
    domain: Name | None = None
    starts_at: When
    ends_at: When
    reason: Name

    def scope(self) -> SilenceScope:
        """The fields that select alerts."""
        return SilenceScope(device_id=self.device_id, site=self.site, street=self.street, rule_id=self.rule_id,
                            domain=self.domain)


class SilencePatch(_In):
    """Move the window or change the reason."""

    starts_at: When | None = None
    ends_at: When | None = None
    reason: Name | None = None


class AlertDetail(BaseModel):
    """One alert with its full history and work order."""

    alert: AlertRecord
    history: list[HistoryEntry]
    work_order: WorkOrder | None = None


class Problem(BaseModel):
    """Why a request was refused."""

    detail: str


class SilenceOut(Silence):
    """A silence as listed."""
