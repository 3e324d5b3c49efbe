"""The workflow store: alerts with their handling state and history, on SQLite or PostgreSQL."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gulou.timeutil import beijing
from gulou.workflow import db
from gulou.workflow.model import UNHANDLED, AlertRecord, Conflict, HistoryEntry, NotFound
from gulou.workflow.queues import Outbox, Silences, WorkOrders
from gulou.workflow.transitions import Change, engine_change, engine_values, work_order_change

log = logging.getLogger(__name__)
A = db.alerts


@dataclass(frozen=True)
class AlertFilter:
    """Which alerts to list; every field given must match."""

    status: tuple[str, ...] = ()
    condition: str | None = None
    severity: tuple[str, ...] = ()
    domain: str | None = None
    street: str | None = None
    device_id: str | None = None
    rule_id: str | None = None
    since: datetime | None = None
    open_only: bool = False


def _record(row: sa.Row[Any]) -> AlertRecord:
    return AlertRecord.model_validate(dict(row._mapping))


class WorkflowStore:
    """Alerts, history, silences, the notification outbox and work orders in one database."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        self.engine: Engine = db.writer_engine(url)
        self.reader: Engine = db.create_engine(url) if self.engine.dialect.name == "sqlite" else self.engine
        if migrate:
            db.migrate(self.engine)
        self.silences = Silences(self.engine, self.reader)
        self.outbox = Outbox(self.engine, self.reader)
        self.work_orders = WorkOrders(self.engine, self.reader)

    def close(self) -> None:
        """Release the connections."""
        self.engine.dispose()
        if self.reader is not self.engine:
            self.reader.dispose()

    # -- engine events ---------------------------------------------------------------------------------
    def record_engine_event(self, payload: dict[str, Any], now: datetime) -> tuple[AlertRecord, bool]:
        """Insert or update the alert of an engine notification and log it; returns (alert, created)."""
        change = engine_change(payload, now)
        with self.engine.begin() as conn:
            db.relaxed_commit(conn)
            row = conn.execute(sa.select(A).where(A.c.alert_id == payload["alert_id"])).first()
            if row is None:
                values = {**engine_values(payload), "status": "new", "escalation_level": 0, "version": 1,
                          "updated_at": now}
                for name in ("standard", "message", "message_en"):
                    values[name] = values[name] or ""
                alert_pk = db.new_id(conn.execute(A.insert().values(**values)))
                merged = {**{c.name: None for c in A.columns}, **values, "id": alert_pk}
            else:
                alert_pk = int(row.id)
                values = dict(change.values)
                for name in ("standard", "message", "message_en"):
                    values[name] = values[name] or ""
                if row.condition == "resolved" and values["condition"] != "resolved":
                    # A late firing or renotify (redelivered after the resolve): an alert id never fires again.
                    values = {"updated_at": now}
                conn.execute(A.update().where(A.c.id == alert_pk).values(**values))
                merged = {**dict(row._mapping), **values}
            db.write_history(conn, alert=alert_pk, at=now, actor=change.actor, action=change.action,
                             detail=change.detail)
        return AlertRecord.model_validate(merged), row is None

    # -- reading ----------------------------------------------------------------------------------------
    def get(self, ref: int | str) -> AlertRecord:
        """One alert by its number or its engine ``alert_id``."""
        with self.reader.connect() as conn:
            row = conn.execute(sa.select(A).where(self._ref(ref))).first()
        if row is None:
            raise NotFound(f"no alert {ref}")
        return _record(row)

    @staticmethod
    def _ref(ref: int | str) -> sa.ColumnElement[bool]:
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit() and len(ref) < 10):
            return A.c.id == int(ref)
        return A.c.alert_id == ref

    def alerts(self, flt: AlertFilter | None = None, *, limit: int = 100, offset: int = 0) -> list[AlertRecord]:
        """Alerts matching the filter, newest first."""
        flt = flt or AlertFilter()
        query = sa.select(A)
        if flt.status:
            query = query.where(A.c.status.in_(flt.status))
        if flt.open_only:
            query = query.where(A.c.status != "closed")
        if flt.severity:
            query = query.where(A.c.severity.in_(flt.severity))
        for name in ("condition", "domain", "street", "device_id", "rule_id"):
            want = getattr(flt, name)
            if want is not None:
                query = query.where(A.c[name] == want)
        if flt.since is not None:
            query = query.where(A.c.last_seen >= flt.since)
        query = query.order_by(A.c.first_seen.desc(), A.c.id.desc()).limit(limit).offset(offset)
        with self.reader.connect() as conn:
            return [_record(r) for r in conn.execute(query)]

    def history(self, ref: int | str) -> list[HistoryEntry]:
        """Everything that happened to one alert, oldest first."""
        alert = self.get(ref)
        h = db.history
        query = sa.select(h.c.id, h.c.alert, h.c.at, h.c.actor, h.c.action, h.c.note, h.c.detail).where(
            h.c.alert == alert.id).order_by(h.c.id)
        with self.reader.connect() as conn:
            return [HistoryEntry.model_validate(dict(r._mapping)) for r in conn.execute(query)]

    def unhandled_firing(self, severities: tuple[str, ...]) -> list[AlertRecord]:
        """Firing alerts nobody acknowledged or took, of the given severities (escalation candidates).

        Silenced alerts are left out: a silence means recorded, never notified — an escalation included.
        """
        query = sa.select(A).where(A.c.condition == "firing", A.c.status.in_(UNHANDLED),
                                   A.c.severity.in_(severities), A.c.silence_id.is_(None)).order_by(A.c.id)
        with self.reader.connect() as conn:
            return [_record(r) for r in conn.execute(query)]

    # -- changes ----------------------------------------------------------------------------------------
    def act(self, ref: int | str, decide: Callable[[AlertRecord], Change],
            expected_version: int | None = None) -> AlertRecord:
        """Apply an operator's action with optimistic locking; a concurrent change makes it a Conflict."""
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(A).where(self._ref(ref))).first()
            if row is None:
                raise NotFound(f"no alert {ref}")
            current = _record(row)
            if expected_version is not None and expected_version != current.version:
                raise Conflict(f"alert {current.id} changed since you read it (version {expected_version}, now "
                               f"{current.version}, last by {current.updated_by or 'system'} at "
                               f"{beijing(current.updated_at)})")
            change = decide(current)
            values = dict(change.values)
            if change.bumps_version:
                values["version"] = current.version + 1
            done = conn.execute(A.update().where(A.c.id == current.id, A.c.version == current.version)
                                .values(**values))
            if done.rowcount != 1:
                raise Conflict(f"alert {current.id} was changed by someone else at the same time; reload it")
            db.write_history(conn, alert=current.id, at=values["updated_at"], actor=change.actor,
                             action=change.action, note=change.note, detail=change.detail)
            fresh = conn.execute(sa.select(A).where(A.c.id == current.id)).one()
        return _record(fresh)

    def apply_system(self, alert: AlertRecord, change: Change, *, only_if_unhandled: bool = False) -> bool:
        """A system change (escalation, silence note) without a version check; False when it no longer applies."""
        with self.engine.begin() as conn:
            query = A.update().where(A.c.id == alert.id)
            if only_if_unhandled:
                query = query.where(A.c.status.in_(UNHANDLED), A.c.condition == "firing")
            if change.values and conn.execute(query.values(**change.values)).rowcount != 1:
                return False
            db.write_history(conn, alert=alert.id, at=change.values.get("updated_at") or alert.updated_at,
                             actor=change.actor, action=change.action, note=change.note, detail=change.detail)
        return True

    def note(self, alert: int, at: datetime, action: str, detail: dict[str, Any], note: str | None = None,
             actor: str = "system") -> None:
        """Add a history line without changing the alert (notifications sent, suppressed by a silence)."""
        with self.engine.begin() as conn:
            db.write_history(conn, alert=alert, at=at, actor=actor, action=action, note=note, detail=detail)

    def work_order_progress(self, order_id: str, status: str, note: str | None, photo_url: str | None,
                            now: datetime) -> AlertRecord:
        """A progress report from the dispatch system; ``done`` closes the alert."""
        order = self.work_orders.get(order_id)
        self.work_orders.progress(order_id, status, note, photo_url, now)
        return self.act(order.alert, lambda a: work_order_change(a, order_id, status, note, now, photo_url))

    def by_alert_ids(self, alert_ids: list[str]) -> dict[str, AlertRecord]:
        """Workflow records of these engine alert ids (those the workflow has seen)."""
        found: dict[str, AlertRecord] = {}
        for start in range(0, len(alert_ids), 500):
            chunk = alert_ids[start:start + 500]
            with self.reader.connect() as conn:
                for row in conn.execute(sa.select(A).where(A.c.alert_id.in_(chunk))):
                    record = _record(row)
                    found[record.alert_id] = record
        return found
