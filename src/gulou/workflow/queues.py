"""Silences, the durable notification outbox with its record of sent messages, and work orders."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gulou.workflow import db
from gulou.workflow.model import NotFound, QueuedItem, Silence, SilenceScope, WorkflowError, WorkOrder

S, Q, M, W = db.silences, db.outbox, db.messages, db.work_orders
SCOPE_FIELDS = tuple(SilenceScope.model_fields)


def _silence(row: sa.Row[Any]) -> Silence:
    data = dict(row._mapping)
    scope = SilenceScope.model_validate({name: data.pop(name) for name in SCOPE_FIELDS})
    return Silence.model_validate({**data, "scope": scope})


class _Table:
    def __init__(self, engine: Engine, reader: Engine) -> None:
        self.engine, self.reader = engine, reader


class Silences(_Table):
    """Maintenance windows; changes are kept in the history with the operator who made them."""

    def create(self, scope: SilenceScope, starts_at: datetime, ends_at: datetime, reason: str, actor: str,
               now: datetime) -> Silence:
        """Add a silence."""
        _check_window(starts_at, ends_at, reason)
        with self.engine.begin() as conn:
            new_id = db.new_id(conn.execute(S.insert().values(
                **scope.model_dump(), starts_at=starts_at, ends_at=ends_at, reason=reason, created_by=actor,
                created_at=now)))
            db.write_history(conn, silence=new_id, at=now, actor=actor, action="silence_created", note=reason,
                             detail={**scope.model_dump(exclude_none=True), "starts_at": starts_at.isoformat(),
                                     "ends_at": ends_at.isoformat()})
        return self.get(new_id)

    def get(self, silence_id: int) -> Silence:
        """One silence."""
        with self.reader.connect() as conn:
            row = conn.execute(sa.select(S).where(S.c.id == silence_id)).first()
        if row is None:
            raise NotFound(f"no silence {silence_id}")
        return _silence(row)

    def find(self, *, active_at: datetime | None = None, include_cancelled: bool = False) -> list[Silence]:
        """Silences, newest first; ``active_at`` keeps those in force then."""
        query = sa.select(S).order_by(S.c.id.desc())
        if not include_cancelled:
            query = query.where(S.c.cancelled_at.is_(None))
        if active_at is not None:
            query = query.where(S.c.starts_at <= active_at, S.c.ends_at > active_at)
        with self.reader.connect() as conn:
            return [_silence(r) for r in conn.execute(query)]

    def update(self, silence_id: int, actor: str, now: datetime, *, ends_at: datetime | None = None,
               starts_at: datetime | None = None, reason: str | None = None) -> Silence:
        """Change the window or the reason of a silence that is not cancelled."""
        current = self.get(silence_id)
        if current.cancelled_at is not None:
            raise WorkflowError(f"silence {silence_id} was cancelled by {current.cancelled_by}")
        changes: dict[str, Any] = {k: v for k, v in
                                   (("ends_at", ends_at), ("starts_at", starts_at), ("reason", reason))
                                   if v is not None}
        _check_window(changes.get("starts_at", current.starts_at), changes.get("ends_at", current.ends_at),
                      changes.get("reason", current.reason))
        with self.engine.begin() as conn:
            conn.execute(S.update().where(S.c.id == silence_id).values(**changes, updated_by=actor, updated_at=now))
            db.write_history(conn, silence=silence_id, at=now, actor=actor, action="silence_updated",
                             note=reason, detail={k: v.isoformat() if isinstance(v, datetime) else v
                                                  for k, v in changes.items()})
        return self.get(silence_id)

    def cancel(self, silence_id: int, actor: str, now: datetime) -> Silence:
        """End a silence now (kept, marked cancelled, for the record)."""
        current = self.get(silence_id)
        if current.cancelled_at is not None:
            return current
        with self.engine.begin() as conn:
            conn.execute(S.update().where(S.c.id == silence_id).values(cancelled_by=actor, cancelled_at=now))
            db.write_history(conn, silence=silence_id, at=now, actor=actor, action="silence_cancelled")
        return self.get(silence_id)


def _check_window(starts_at: datetime, ends_at: datetime, reason: str) -> None:
    if ends_at <= starts_at:
        raise WorkflowError("a silence must end after it starts")
    if not reason.strip():
        raise WorkflowError("a silence needs a reason")


class Outbox(_Table):
    """Notifications waiting for their channel (durable), and the messages that carried them."""

    def enqueue(self, channels: Sequence[str], alert: int, event: str, severity: str, rule_id: str,
                payload: dict[str, Any], now: datetime) -> None:
        """Keep one notification for each channel until that channel sends it (one transaction)."""
        if not channels:
            return
        with self.engine.begin() as conn:
            db.relaxed_commit(conn)
            conn.execute(Q.insert(), [dict(channel=c, alert=alert, event=event, severity=severity, rule_id=rule_id,
                                           created_at=now, payload=payload, attempts=0) for c in channels])

    def waiting(self, channel: str, limit: int = 2000) -> list[QueuedItem]:
        """Unsent notifications of a channel, oldest first."""
        query = sa.select(Q.c.id, Q.c.channel, Q.c.alert, Q.c.event, Q.c.severity, Q.c.rule_id, Q.c.created_at,
                          Q.c.payload, Q.c.attempts, Q.c.next_attempt_at).where(
            Q.c.channel == channel, Q.c.sent_at.is_(None)).order_by(Q.c.id).limit(limit)
        with self.reader.connect() as conn:
            return [QueuedItem.model_validate(dict(r._mapping)) for r in conn.execute(query)]

    def channels(self) -> list[str]:
        """Channels with something waiting."""
        query = sa.select(Q.c.channel).where(Q.c.sent_at.is_(None)).distinct()
        with self.reader.connect() as conn:
            return sorted(str(r[0]) for r in conn.execute(query))

    def counts(self) -> dict[str, int]:
        """Waiting notifications per channel."""
        query = sa.select(Q.c.channel, sa.func.count()).where(Q.c.sent_at.is_(None)).group_by(Q.c.channel)
        with self.reader.connect() as conn:
            return {str(c): int(n) for c, n in conn.execute(query)}

    def sent(self, channel: str, items: Sequence[QueuedItem], kind: str, title: str, now: datetime) -> int:
        """Record one message that carried these items, and a ``notified`` line in each alert's history."""
        ids = [i.id for i in items]
        with self.engine.begin() as conn:
            message_id = db.new_id(conn.execute(M.insert().values(
                channel=channel, sent_at=now, kind=kind, items=len(ids), title=title[:500])))
            conn.execute(Q.update().where(Q.c.id.in_(ids)).values(message=message_id, sent_at=now))
            detail = {"channel": channel, "message": message_id, "kind": kind}
            conn.execute(db.history.insert(), [dict(alert=a, silence=None, at=now, actor="system", action="notified",
                                                    note=None, detail=detail)
                                               for a in dict.fromkeys(i.alert for i in items)])
        return message_id

    def deferred(self, item_ids: Sequence[int], next_attempt_at: datetime) -> None:
        """A message failed: its items wait and count the attempt."""
        with self.engine.begin() as conn:
            conn.execute(Q.update().where(Q.c.id.in_(list(item_ids))).values(
                attempts=Q.c.attempts + 1, next_attempt_at=next_attempt_at))

    def sent_since(self, channel: str, since: datetime) -> list[datetime]:
        """When the channel's messages went out since ``since`` (the rate limiter's memory survives restarts)."""
        query = sa.select(M.c.sent_at).where(M.c.channel == channel, M.c.sent_at > since).order_by(M.c.sent_at)
        with self.reader.connect() as conn:
            return [r[0] for r in conn.execute(query)]


class WorkOrders(_Table):
    """工单 raised for alerts, their delivery to the dispatch system and their progress."""

    def create(self, alert: int, now: datetime) -> WorkOrder:
        """A pending work order for the alert (sent by the dispatcher)."""
        order_id = f"WO-{now:%Y%m%d}-{uuid.uuid4().hex[:8]}"
        with self.engine.begin() as conn:
            conn.execute(W.insert().values(id=order_id, alert=alert, status="pending", attempts=0, created_at=now,
                                           updated_at=now))
            conn.execute(db.alerts.update().where(db.alerts.c.id == alert).values(
                work_order_id=order_id, work_order_status="pending"))
            db.write_history(conn, alert=alert, at=now, actor="system", action="work_order_created",
                             detail={"work_order_id": order_id})
        return self.get(order_id)

    def get(self, order_id: str) -> WorkOrder:
        """One work order."""
        with self.reader.connect() as conn:
            row = conn.execute(sa.select(W).where(W.c.id == order_id)).first()
        if row is None:
            raise NotFound(f"no work order {order_id}")
        data = dict(row._mapping)
        data.pop("next_attempt_at")
        return WorkOrder.model_validate(data)

    def due(self, now: datetime) -> list[WorkOrder]:
        """Pending work orders whose next delivery attempt is due."""
        query = sa.select(W.c.id).where(W.c.status == "pending", sa.or_(
            W.c.next_attempt_at.is_(None), W.c.next_attempt_at <= now)).order_by(W.c.created_at)
        with self.reader.connect() as conn:
            ids = [str(r[0]) for r in conn.execute(query)]
        return [self.get(i) for i in ids]

    def delivered(self, order_id: str, now: datetime) -> None:
        """The dispatch system took the work order."""
        self._set(order_id, now, status="sent")

    def failed_attempt(self, order_id: str, error: str, next_attempt_at: datetime, now: datetime) -> None:
        """Delivery failed; try again later."""
        with self.engine.begin() as conn:
            conn.execute(W.update().where(W.c.id == order_id).values(
                attempts=W.c.attempts + 1, last_error=error[:500], next_attempt_at=next_attempt_at, updated_at=now))

    def progress(self, order_id: str, status: str, note: str | None, photo_url: str | None, now: datetime) -> None:
        """Store a progress report from the dispatch system."""
        self._set(order_id, now, status=status, note=note, photo_url=photo_url)

    def _set(self, order_id: str, now: datetime, **values: Any) -> None:
        with self.engine.begin() as conn:
            order = conn.execute(W.update().where(W.c.id == order_id).values(**values, updated_at=now))
            if order.rowcount != 1:
                raise NotFound(f"no work order {order_id}")
            alert = conn.execute(sa.select(W.c.alert).where(W.c.id == order_id)).scalar_one()
            conn.execute(db.alerts.update().where(db.alerts.c.id == alert).values(work_order_status=values["status"]))
