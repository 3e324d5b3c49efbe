"""Work orders (工单): the signed request to the dispatch system, and the progress it calls back with."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

import httpx
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from gulou.timeutil import beijing
from gulou.workflow.model import AlertRecord, WorkOrder
from gulou.workflow.signing import signed_headers


class DispatchError(Exception):
    """The dispatch system did not take the work order (retried later)."""


class WorkOrderCallback(BaseModel):
    """Progress from the dispatch system: accepted, on site, done (with a note and a photo link)."""

    model_config = ConfigDict(extra="forbid")

    work_order_id: str = Field(max_length=64)
    status: Literal["accepted", "on_site", "done"]
    note: str | None = Field(default=None, max_length=2000)
    photo_url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://\S+$")
    at: AwareDatetime | None = None


def work_order_body(order: WorkOrder, alert: AlertRecord, callback_url: str | None) -> dict[str, Any]:
    """What the dispatch system receives: the order, the place, the problem, where to report progress."""
    return {
        "work_order_id": order.id, "created_at": beijing(order.created_at), "callback_url": callback_url,
        "alert": {"id": alert.id, "alert_id": alert.alert_id, "rule_id": alert.rule_id, "severity": alert.severity,
                  "domain": alert.domain, "device_id": alert.device_id, "site": alert.site,
                  "site_name": alert.site_name, "street": alert.street, "message": alert.message,
                  "value": alert.value, "limit": alert.limit, "first_seen": beijing(alert.first_seen)},
    }


class Dispatcher:
    """POSTs work orders to the configured endpoint, signed with the shared secret (timestamp + body)."""

    def __init__(self, url: str, secret: str, *, callback_url: str | None = None, timeout_s: float = 10.0) -> None:
        self.url, self.secret, self.callback_url, self.timeout_s = url, secret, callback_url, timeout_s

    async def send(self, order: WorkOrder, alert: AlertRecord, now: datetime) -> None:
        """Deliver one work order; raises ``DispatchError`` when the endpoint does not take it."""
        body = json.dumps(work_order_body(order, alert, self.callback_url), ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json; charset=utf-8",
                   **signed_headers(self.secret, body, now.timestamp())}
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                answer = await client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DispatchError(f"unreachable: {exc}") from None
        if answer.status_code >= 300:
            raise DispatchError(f"HTTP {answer.status_code}")
