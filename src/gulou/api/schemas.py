"""Request and response bodies of the API."""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from gulou.workflow.dispatch import WorkOrderCallback
from gulou.workflow.model import AlertRecord, AssigneeKind, HistoryEntry, Silence, SilenceScope, WorkOrder

# No NUL characters: neither database keeps them in text.
Text = Annotated[str, StringConstraints(max_length=2000, pattern=r"^[^\x00]*$")]
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
    """A maintenance window: what it covers, when, and why."""

    device_id: Name | None = None
    site: Name | None = None
    street: Name | None = None
    rule_id: Name | None = None
    domain: Name | None = None
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    reason: Name

    def scope(self) -> SilenceScope:
        """The fields that select alerts."""
        return SilenceScope(device_id=self.device_id, site=self.site, street=self.street, rule_id=self.rule_id,
                            domain=self.domain)


class SilencePatch(_In):
    """Move the window or change the reason."""

    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
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
