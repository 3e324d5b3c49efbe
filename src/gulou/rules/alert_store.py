"""Alerts, their history, undelivered notifications and engine state, in the embedded store's SQLite file."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from gulou.rules.alerts import AlertTransition

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS alerts (
        alert_id TEXT PRIMARY KEY, key TEXT NOT NULL, rule_id TEXT NOT NULL, device_id TEXT NOT NULL,
        site TEXT NOT NULL, domain TEXT NOT NULL, severity TEXT NOT NULL, state TEXT NOT NULL,
        first_seen TEXT NOT NULL, last_seen TEXT NOT NULL, body TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS alerts_state ON alerts (state, first_seen)",
    """CREATE TABLE IF NOT EXISTS alert_events (
        id INTEGER PRIMARY KEY, alert_id TEXT NOT NULL, event TEXT NOT NULL, ts TEXT NOT NULL,
        recorded_ms INTEGER NOT NULL, body TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS alert_events_alert ON alert_events (alert_id, id)",
    """CREATE TABLE IF NOT EXISTS alert_outbox (
        id INTEGER PRIMARY KEY, channel TEXT NOT NULL, created_ms INTEGER NOT NULL, attempts INTEGER NOT NULL,
        last_error TEXT NOT NULL, body TEXT NOT NULL)""",
    "CREATE TABLE IF NOT EXISTS rules_engine_state ("
    "id INTEGER PRIMARY KEY CHECK (id = 1), saved_ms INTEGER, body TEXT)",
)


class AlertStore:
    """Own connection to the store file (WAL, shared safely with the ingest's connection)."""

    def __init__(self, path: Path | str, readonly: bool = False) -> None:
        self.path = Path(path)
        if readonly:
            if not self.path.exists():
                raise FileNotFoundError(f"no store at {self.path}")
            self._db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True,
                                       check_same_thread=False, isolation_level=None)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA busy_timeout = 10000")
        self.readonly = readonly
        if not readonly:
            self._db.execute("PRAGMA journal_mode = WAL")
            with self._lock:
                for statement in _SCHEMA:
                    self._db.execute(statement)

    def _has_tables(self) -> bool:
        row = self._db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='alerts'").fetchone()
        return row is not None

    # -- writing ------------------------------------------------------------------------------------
    def record(self, transition: AlertTransition) -> None:
        """Upsert the alert and append the event to its history (one transaction)."""
        a = transition.alert
        body = json.dumps(a.to_json(), ensure_ascii=False)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT OR REPLACE INTO alerts (alert_id, key, rule_id, device_id, site, domain, severity, "
                    "state, first_seen, last_seen, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (a.alert_id, a.key, a.rule_id, a.device_id, a.site, a.domain, a.severity, a.state,
                     a.first_seen.isoformat(), a.last_seen.isoformat(), body))
                self._db.execute(
                    "INSERT INTO alert_events (alert_id, event, ts, recorded_ms, body) VALUES (?, ?, ?, ?, ?)",
                    (a.alert_id, transition.event, a.last_seen.isoformat(), int(time.time() * 1000), body))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def keep(self, channel: str, payload: dict[str, Any], attempts: int, error: str) -> None:
        """Keep a notification that could not be delivered, for later redelivery."""
        with self._lock:
            self._db.execute(
                "INSERT INTO alert_outbox (channel, created_ms, attempts, last_error, body) VALUES (?, ?, ?, ?, ?)",
                (channel, int(time.time() * 1000), attempts, error[:500], json.dumps(payload, ensure_ascii=False)))

    def pending(self, channel: str, limit: int = 100) -> list[tuple[int, dict[str, Any]]]:
        """Undelivered notifications of a channel, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT id, body FROM alert_outbox WHERE channel = ? ORDER BY id LIMIT ?",
                                    (channel, limit)).fetchall()
        return [(int(i), json.loads(b)) for i, b in rows]

    def delivered(self, outbox_id: int) -> None:
        """Forget a notification once it finally went out."""
        with self._lock:
            self._db.execute("DELETE FROM alert_outbox WHERE id = ?", (outbox_id,))

    def pop_oldest(self) -> dict[str, Any] | None:
        """Remove and return the oldest undelivered notification of any channel (an outbox over its bound)."""
        with self._lock:
            row = self._db.execute("DELETE FROM alert_outbox WHERE id = (SELECT MIN(id) FROM alert_outbox) "
                                   "RETURNING body").fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def outbox_counts(self) -> dict[str, int]:
        """Undelivered notifications per channel."""
        if self.readonly and not self._has_tables():
            return {}
        with self._lock:
            rows = self._db.execute("SELECT channel, COUNT(*) FROM alert_outbox GROUP BY channel").fetchall()
        return {str(c): int(n) for c, n in rows}

    def save_state(self, snapshot: dict[str, Any]) -> None:
        """Persist the engine snapshot (windows, counters, active alerts)."""
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO rules_engine_state (id, saved_ms, body) VALUES (1, ?, ?)",
                             (int(time.time() * 1000), json.dumps(snapshot, ensure_ascii=False)))

    def load_state(self) -> dict[str, Any] | None:
        """The last saved engine snapshot, if any."""
        with self._lock:
            row = self._db.execute("SELECT body FROM rules_engine_state WHERE id = 1").fetchone()
        return None if row is None else dict(json.loads(row[0]))

    # -- reading ------------------------------------------------------------------------------------
    def alerts(self, active_only: bool = False, limit: int | None = None) -> list[dict[str, Any]]:
        """Alerts, newest first; ``active_only`` gives the firing ones."""
        if self.readonly and not self._has_tables():
            return []
        sql = "SELECT body FROM alerts"
        args: list[Any] = []
        if active_only:
            sql += " WHERE state = 'firing'"
        sql += " ORDER BY first_seen DESC, alert_id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [dict(json.loads(r[0])) for r in rows]

    def history(self, alert_id: str) -> list[dict[str, Any]]:
        """Events of one alert in order."""
        with self._lock:
            rows = self._db.execute("SELECT event, body FROM alert_events WHERE alert_id = ? ORDER BY id",
                                    (alert_id,)).fetchall()
        return [{"event": e, **json.loads(b)} for e, b in rows]

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()
