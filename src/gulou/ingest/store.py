"""The embedded store: one SQLite file with readings, statuses, dead letters, accounting and health."""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from gulou.devices.registry import Registry
from gulou.tsdb.records import Batch, DeadLetter
from gulou.tsdb.writer import Sink, SinkError

SCHEMA_VERSION = 1
HOUR_MS = 3_600_000
Outcome = Literal["received", "stored", "rejected", "spooled", "replayed"]
# Figures of a collector's health["spool"] that add up across collectors into stats()["spool"].
SPOOL_KEYS = ("depth", "points", "bytes", "max_bytes")

# Readings are keyed (ts_ms, device_id): collectors write in roughly time order, so inserts append to
# the end of the table's B-tree (about twice as fast as keying by device first, measured); the
# (device_id, ts_ms) index serves per-device queries.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    device_id TEXT NOT NULL, ts_ms INTEGER NOT NULL, domain TEXT NOT NULL, type TEXT NOT NULL,
    street TEXT NOT NULL, site TEXT NOT NULL, seq INTEGER, tags TEXT NOT NULL, vals TEXT NOT NULL,
    PRIMARY KEY (ts_ms, device_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS readings_device ON readings (device_id, ts_ms);
CREATE TABLE IF NOT EXISTS statuses (
    device_id TEXT NOT NULL, ts_ms INTEGER NOT NULL, domain TEXT NOT NULL, street TEXT NOT NULL,
    site TEXT NOT NULL, online INTEGER NOT NULL, battery REAL, rssi REAL,
    PRIMARY KEY (device_id, ts_ms)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS deadletters (
    id INTEGER PRIMARY KEY, received_ms INTEGER NOT NULL, topic TEXT NOT NULL, payload BLOB NOT NULL,
    reason TEXT NOT NULL, detail TEXT NOT NULL, device_id TEXT, domain TEXT
);
CREATE INDEX IF NOT EXISTS deadletters_reason ON deadletters (reason, received_ms);
CREATE TABLE IF NOT EXISTS counts (
    hour_ms INTEGER NOT NULL, device_id TEXT NOT NULL, domain TEXT NOT NULL, outcome TEXT NOT NULL,
    reason TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (hour_ms, device_id, domain, outcome, reason)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS health (
    collector_id TEXT PRIMARY KEY, updated_ms INTEGER NOT NULL, health TEXT NOT NULL
);
"""

_INSERT_READING = ("INSERT OR REPLACE INTO readings (device_id, ts_ms, domain, type, street, site, seq, tags, vals)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
_INSERT_STATUS = ("INSERT OR REPLACE INTO statuses (device_id, ts_ms, domain, street, site, online, battery, rssi)"
                  " VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
_INSERT_DEADLETTER = ("INSERT INTO deadletters (received_ms, topic, payload, reason, detail, device_id, domain)"
                      " VALUES (?, ?, ?, ?, ?, ?, ?)")
_UPSERT_COUNT = ("INSERT INTO counts (hour_ms, device_id, domain, outcome, reason, n) VALUES (?, ?, ?, ?, ?, ?)"
                 " ON CONFLICT (hour_ms, device_id, domain, outcome, reason) DO UPDATE SET n = n + excluded.n")


@dataclass(frozen=True)
class CountRow:
    """An accounting increment: ``n`` messages of one device had this outcome in this hour."""

    hour_ms: int
    device_id: str
    domain: str
    outcome: Outcome
    reason: str = ""
    n: int = 1


def hour_of(ts_ms: int) -> int:
    """Start of the UTC hour containing ``ts_ms``."""
    return ts_ms - ts_ms % HOUR_MS


def rfc3339(ts_ms: int) -> str:
    """Epoch milliseconds as RFC 3339 UTC with a ``Z``."""
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class EmbeddedStore(Sink):
    """The default sink: a SQLite file in WAL mode, ``synchronous=FULL``, idempotent on (device, ts)."""

    name = "embedded"

    def __init__(self, path: Path, readonly: bool = False, busy_timeout_ms: int = 10_000) -> None:
        self.path = Path(path)
        self.readonly = readonly
        if readonly:
            if not self.path.exists():
                raise FileNotFoundError(f"no store at {self.path}")
            uri = f"{self.path.resolve().as_uri()}?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        # One connection shared by the collector's threads; the lock serialises them.
        self._lock = threading.RLock()
        self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        if not readonly:
            self._db.execute("PRAGMA journal_mode = WAL")
        # FULL: with WAL, NORMAL can lose the last commits on power loss, and write() promises that a
        # returned batch is durable. FULL fsyncs the WAL at every commit, once per batch.
        self._db.execute("PRAGMA synchronous = FULL")
        self._db.execute("PRAGMA cache_size = -65536")  # 64 MiB: index pages of recent hours stay hot
        if not readonly:
            # Each batch dirties one device-index page per device; checkpointing every 80 MB of WAL instead
            # of the default 4 MB writes those pages back once instead of many times (~1.6x throughput).
            self._db.execute("PRAGMA wal_autocheckpoint = 20000")
        self._migrate()

    def _migrate(self) -> None:
        version = self._version()
        if version > SCHEMA_VERSION:
            raise RuntimeError(f"{self.path} has schema version {version}; this gulou knows up to {SCHEMA_VERSION}")
        if version == SCHEMA_VERSION:
            return
        if self.readonly:
            raise RuntimeError(f"{self.path} is not initialised (schema {version}); open it once for writing")
        # executescript would commit on its own, so statements run one by one in a single transaction;
        # the version is read again under the write lock in case another process created it meanwhile.
        with self._transaction() as db:
            if self._version() < SCHEMA_VERSION:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            # IMMEDIATE takes the write lock up front, so busy_timeout applies rather than a lock upgrade
            # failing half-way through the transaction.
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:  # also when COMMIT itself failed (disk full, I/O error)
                    self._db.execute("ROLLBACK")
                raise

    # -- writing ---------------------------------------------------------------------------------------

    def write(self, batch: Batch) -> None:
        """Store a batch durably in one transaction; duplicates (same device and ts) overwrite."""
        self.record(batch, [], [])

    def record(self, batch: Batch | None, deadletters: Sequence[DeadLetter], counts: Sequence[CountRow]) -> None:
        """Store readings, dead letters and accounting increments in ONE transaction."""
        try:
            with self._transaction() as db:
                if batch is not None:
                    self._insert_batch(db, batch)
                if deadletters:
                    db.executemany(_INSERT_DEADLETTER, _deadletter_rows(deadletters))
                if counts:
                    db.executemany(_UPSERT_COUNT, _count_rows(counts))
        except sqlite3.Error as exc:
            raise SinkError(f"embedded store {self.path}: {exc}") from exc

    @staticmethod
    def _insert_batch(db: sqlite3.Connection, batch: Batch) -> None:
        dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        if batch.points:
            db.executemany(_INSERT_READING, [
                (p.device_id, p.ts_ms, p.domain, p.type, p.street, p.site, p.seq,
                 dumps(p.tags) if p.tags else "", dumps(p.values))
                for p in batch.points
            ])
        if batch.statuses:
            db.executemany(_INSERT_STATUS, [
                (s.device_id, s.ts_ms, s.domain, s.street, s.site, int(s.online), s.battery, s.rssi)
                for s in batch.statuses
            ])

    def add_counts(self, counts: Sequence[CountRow]) -> None:
        """Add accounting increments on their own (readings went to another sink or the spool)."""
        self.record(None, [], counts)

    def add_deadletters(self, deadletters: Sequence[DeadLetter], counts: Sequence[CountRow] = ()) -> None:
        """Store dead letters (and optionally their accounting rows) on their own."""
        self.record(None, deadletters, counts)

    def set_health(self, collector_id: str, health: dict[str, Any]) -> None:
        """Upsert one collector's health snapshot (spool depth/bytes/capacity, reconnects, stalled...)."""
        with self._transaction() as db:
            db.execute("INSERT INTO health (collector_id, updated_ms, health) VALUES (?, ?, ?) ON CONFLICT"
                       " (collector_id) DO UPDATE SET updated_ms = excluded.updated_ms, health = excluded.health",
                       (collector_id, int(time.time() * 1000), json.dumps(health, ensure_ascii=False, default=str)))

    def flush(self) -> None:
        """Nothing to do: every transaction is fsynced at commit."""

    def close(self) -> None:
        """Close the connection (SQLite checkpoints the WAL when the last connection closes)."""
        with self._lock:
            self._db.close()

    # -- reading ---------------------------------------------------------------------------------------

    def _query(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, tuple(args)).fetchall()

    def query_readings(self, domain: str | None = None, device: str | None = None, since_ms: int | None = None,
                       until_ms: int | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Readings in ``[since_ms, until_ms)``, ordered by time then device, metrics flattened in."""
        where, args = _filters(domain=domain, device_id=device, since_ms=since_ms, until_ms=until_ms)
        sql = (f"SELECT device_id, domain, type, street, site, ts_ms, seq, tags, vals FROM readings{where}"
               " ORDER BY ts_ms, device_id")
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        rows = []
        for device_id, dom, typ, street, site, ts_ms, seq, tags, vals in self._query(sql, args):
            row: dict[str, Any] = {"device_id": device_id, "domain": dom, "type": typ, "street": street,
                                   "site": site, "ts": rfc3339(ts_ms), "seq": seq}
            if tags:
                row.update(json.loads(tags))
            row.update(json.loads(vals))
            rows.append(row)
        return rows

    def deadletters(self, limit: int | None = None, reason: str | None = None) -> list[dict[str, Any]]:
        """Dead letters, newest first, optionally of one reason."""
        sql = "SELECT topic, reason, detail, payload, received_ms, device_id, domain FROM deadletters"
        args: list[Any] = []
        if reason is not None:
            sql += " WHERE reason = ?"
            args.append(reason)
        sql += " ORDER BY received_ms DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        out = []
        for topic, why, detail, payload, received_ms, device_id, dom in self._query(sql, args):
            raw = bytes(payload)
            row: dict[str, Any] = {"topic": topic, "reason": why, "detail": detail,
                                   "payload": raw.decode("utf-8", errors="replace"),
                                   "received_at": rfc3339(received_ms), "device_id": device_id, "domain": dom}
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                row["payload_b64"] = base64.b64encode(raw).decode("ascii")
            out.append(row)
        return out

    def status_history(self, device: str | None = None) -> list[dict[str, Any]]:
        """Status events (online/offline, battery, rssi), ordered by time then device."""
        where, args = _filters(device_id=device)
        sql = (f"SELECT device_id, domain, street, site, ts_ms, online, battery, rssi FROM statuses{where}"
               " ORDER BY ts_ms, device_id")
        return [
            {"device_id": d, "domain": dom, "street": street, "site": site, "ts": rfc3339(ts),
             "online": bool(online), "battery": battery, "rssi": rssi}
            for d, dom, street, site, ts, online, battery, rssi in self._query(sql, args)
        ]

    def stats(self) -> dict[str, Any]:
        """Accounting totals, per domain/reason/device, spool totals and each collector's health."""
        totals = dict.fromkeys(("received", "stored", "rejected", "spooled", "replayed"), 0)
        for outcome, n in self._query("SELECT outcome, SUM(n) FROM counts GROUP BY outcome"):
            totals[outcome] = int(n)
        by_domain: dict[str, dict[str, int]] = {}
        by_device: dict[str, dict[str, int]] = {}
        for key, table in (("domain", by_domain), ("device_id", by_device)):
            sql = (f"SELECT {key}, outcome, SUM(n) FROM counts WHERE outcome IN ('received', 'stored', 'rejected')"
                   f" GROUP BY {key}, outcome ORDER BY {key}")
            for name, outcome, n in self._query(sql):
                table.setdefault(name, {"received": 0, "stored": 0, "rejected": 0})[outcome] = int(n)
        by_reason = {reason: int(n) for reason, n in self._query(
            "SELECT reason, SUM(n) FROM counts WHERE outcome = 'rejected' GROUP BY reason ORDER BY SUM(n) DESC")}
        collectors: dict[str, dict[str, Any]] = {}
        for collector_id, updated_ms, health in self._query(
                "SELECT collector_id, updated_ms, health FROM health ORDER BY collector_id"):
            collectors[collector_id] = {**json.loads(health), "updated_at": rfc3339(updated_ms)}
        spool: dict[str, Any] = dict.fromkeys(SPOOL_KEYS, 0)
        for health in collectors.values():
            figures = health.get("spool") or {}
            for key in SPOOL_KEYS:
                spool[key] += int(figures.get(key) or 0)
        spool["fill_ratio"] = round(spool["bytes"] / spool["max_bytes"], 4) if spool["max_bytes"] else 0.0
        return {
            "received": totals["received"], "stored": totals["stored"], "rejected": totals["rejected"],
            "spooled": max(0, totals["spooled"] - totals["replayed"]),
            "by_domain": by_domain, "by_reason": by_reason, "by_device": by_device,
            "spool": spool, "collectors": collectors,
        }

    def completeness(self, since_ms: int, until_ms: int, registry: Registry) -> list[dict[str, Any]]:
        """Per registered device per UTC hour in ``[since, until)``: expected, received, stored, rejected, ratio."""
        first = hour_of(since_ms)
        got: dict[tuple[str, int], dict[str, int]] = {}
        for device_id, hour, outcome, n in self._query(
                "SELECT device_id, hour_ms, outcome, SUM(n) FROM counts WHERE hour_ms >= ? AND hour_ms < ?"
                " AND outcome IN ('received', 'stored', 'rejected') GROUP BY device_id, hour_ms, outcome",
                (first, until_ms)):
            got.setdefault((device_id, hour), {})[outcome] = int(n)
        rows = []
        for hour in range(first, until_ms, HOUR_MS):
            for device in registry:
                counts = got.get((device.id, hour), {})
                expected_f = 3600 / device.interval_s
                expected: float | int = int(expected_f) if expected_f.is_integer() else round(expected_f, 3)
                stored = counts.get("stored", 0)
                rows.append({
                    "hour": rfc3339(hour), "hour_ms": hour, "device_id": device.id, "domain": device.domain,
                    "type": device.type, "street": device.street, "expected": expected,
                    "received": counts.get("received", 0), "stored": stored,
                    "rejected": counts.get("rejected", 0), "ratio": round(stored / expected_f, 4),
                })
        return rows


def _filters(**given: Any) -> tuple[str, list[Any]]:
    clauses, args = [], []
    for name, value in given.items():
        if value is None:
            continue
        if name == "since_ms":
            clauses.append("ts_ms >= ?")
        elif name == "until_ms":
            clauses.append("ts_ms < ?")
        else:
            clauses.append(f"{name} = ?")
        args.append(value)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


def _deadletter_rows(deadletters: Iterable[DeadLetter]) -> list[tuple[Any, ...]]:
    return [(d.received_ms, d.topic, bytes(d.payload), d.reason, d.detail, d.device_id, d.domain)
            for d in deadletters]


def _count_rows(counts: Iterable[CountRow]) -> list[tuple[Any, ...]]:
    return [(c.hour_ms, c.device_id, c.domain, c.outcome, c.reason, c.n) for c in counts if c.n]
