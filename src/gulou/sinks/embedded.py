"""The embedded store: one SQLite file with readings, statuses, dead letters, accounting and health."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, NamedTuple

import orjson

from gulou.settings import Settings
from gulou.sinks.embedded_queries import StoreQueries
from gulou.tsdb.records import Batch, DeadLetter
from gulou.tsdb.writer import Sink, SinkError

SCHEMA_VERSION = 2
Outcome = Literal["received", "stored", "rejected", "spooled", "replayed"]

# Readings are keyed (ts_ms, device_id, period): collectors write in roughly time order, so inserts append
# to the end of the table's B-tree (about twice as fast as keying by device first, measured); the
# (device_id, ts_ms) index serves per-device queries. The period keeps a station's hourly mean at 09:00
# from overwriting its real-time reading at 09:00. ``vals`` holds the values that count (valid flags),
# ``invalid`` those whose flag does not, ``flags`` each value's data flag (JSON; empty when none).
_READINGS = """
CREATE TABLE IF NOT EXISTS {name} (
    device_id TEXT NOT NULL, ts_ms INTEGER NOT NULL, domain TEXT NOT NULL, type TEXT NOT NULL,
    street TEXT NOT NULL, site TEXT NOT NULL, seq INTEGER, tags TEXT NOT NULL, vals TEXT NOT NULL,
    period TEXT NOT NULL DEFAULT 'rtd', flags TEXT NOT NULL DEFAULT '', invalid TEXT NOT NULL DEFAULT '',
    backfill INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (ts_ms, device_id, period)
) WITHOUT ROWID"""
# Accounting by source: "mqtt" or "hj212" (a station's packets through the gateway).
_COUNTS = """
CREATE TABLE IF NOT EXISTS {name} (
    hour_ms INTEGER NOT NULL, device_id TEXT NOT NULL, domain TEXT NOT NULL, outcome TEXT NOT NULL,
    reason TEXT NOT NULL, n INTEGER NOT NULL, source TEXT NOT NULL DEFAULT 'mqtt',
    PRIMARY KEY (hour_ms, device_id, domain, outcome, reason, source)
) WITHOUT ROWID"""
_SCHEMA = _READINGS.format(name="readings") + ";" + """
CREATE INDEX IF NOT EXISTS readings_device ON readings (device_id, ts_ms);
CREATE TABLE IF NOT EXISTS statuses (
    device_id TEXT NOT NULL, ts_ms INTEGER NOT NULL, domain TEXT NOT NULL, street TEXT NOT NULL,
    site TEXT NOT NULL, online INTEGER NOT NULL, battery REAL, rssi REAL,
    PRIMARY KEY (device_id, ts_ms)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS deadletters (
    id INTEGER PRIMARY KEY, received_ms INTEGER NOT NULL, topic TEXT NOT NULL, payload BLOB NOT NULL,
    reason TEXT NOT NULL, detail TEXT NOT NULL, device_id TEXT, domain TEXT,
    source TEXT NOT NULL DEFAULT 'mqtt', mn TEXT
);
CREATE INDEX IF NOT EXISTS deadletters_reason ON deadletters (reason, received_ms);
""" + _COUNTS.format(name="counts") + ";" + """
CREATE TABLE IF NOT EXISTS health (
    collector_id TEXT PRIMARY KEY, updated_ms INTEGER NOT NULL, health TEXT NOT NULL
);
"""
# Version 1 → 2: readings gain the period (in the key), flags, invalid values and back-fill; counts and dead
# letters gain their source. Tables whose key changes are rebuilt, their rows copied.
_MIGRATE_1_2 = (
    _READINGS.format(name="readings_v2"),
    "INSERT INTO readings_v2 (device_id, ts_ms, domain, type, street, site, seq, tags, vals)"
    " SELECT device_id, ts_ms, domain, type, street, site, seq, tags, vals FROM readings",
    "DROP TABLE readings",
    "ALTER TABLE readings_v2 RENAME TO readings",
    "CREATE INDEX IF NOT EXISTS readings_device ON readings (device_id, ts_ms)",
    _COUNTS.format(name="counts_v2"),
    "INSERT INTO counts_v2 (hour_ms, device_id, domain, outcome, reason, n)"
    " SELECT hour_ms, device_id, domain, outcome, reason, n FROM counts",
    "DROP TABLE counts",
    "ALTER TABLE counts_v2 RENAME TO counts",
    "ALTER TABLE deadletters ADD COLUMN source TEXT NOT NULL DEFAULT 'mqtt'",
    "ALTER TABLE deadletters ADD COLUMN mn TEXT",
)



class _Insert:
    """An INSERT run as multi-row VALUES statements: one SQLite call per up to 256 rows, not one per row.

    ``executemany`` steps once per row and releases the GIL at each step; a collector's batch is about 1000
    readings and 2000 count rows, and at every release its network thread may take the GIL for a while. Rows
    go in order, so duplicates replace (or add up) exactly as one by one; statements of 256, 128, … 1 rows keep
    SQLite's statement cache to a few entries per table.
    """

    MAX_ROWS = 256

    def __init__(self, head: str, width: int, tail: str = "") -> None:
        self.head, self.width, self.tail = head, width, tail
        self._sql: dict[int, str] = {}

    def sql(self, rows: int) -> str:
        """The statement for ``rows`` rows."""
        text = self._sql.get(rows)
        if text is None:
            one = "(" + ", ".join("?" * self.width) + ")"
            text = self._sql[rows] = f"{self.head} VALUES {', '.join([one] * rows)}{self.tail}"
        return text

    def run(self, db: sqlite3.Connection, rows: Sequence[Sequence[Any]]) -> None:
        """Insert ``rows`` (each ``width`` values, in column order) in the current transaction."""
        size, pos, total = self.MAX_ROWS, 0, len(rows)
        while pos < total:
            while size > total - pos:
                size //= 2
            db.execute(self.sql(size), [value for row in rows[pos:pos + size] for value in row])
            pos += size


_INSERT_READING = _Insert("INSERT OR REPLACE INTO readings (device_id, ts_ms, domain, type, street, site, seq, tags,"
                          " vals, period, flags, invalid, backfill)", 13)
_INSERT_STATUS = _Insert("INSERT OR REPLACE INTO statuses (device_id, ts_ms, domain, street, site, online, battery,"
                         " rssi)", 8)
_INSERT_DEADLETTER = _Insert("INSERT INTO deadletters (received_ms, topic, payload, reason, detail, device_id, domain,"
                             " source, mn)", 9)
_UPSERT_COUNT = _Insert("INSERT INTO counts (hour_ms, device_id, domain, outcome, reason, n, source)", 7,
                        " ON CONFLICT (hour_ms, device_id, domain, outcome, reason, source)"
                        " DO UPDATE SET n = n + excluded.n")


class CountRow(NamedTuple):
    """An accounting increment: ``n`` messages of one device had this outcome in this hour.

    A named tuple in the counts table's column order: a batch makes one per device and outcome, and the
    rows go to SQLite as they are.
    """

    hour_ms: int
    device_id: str
    domain: str
    outcome: Outcome
    reason: str = ""
    n: int = 1
    source: str = "mqtt"


class EmbeddedStore(StoreQueries, Sink):
    """The default sink: a SQLite file in WAL mode, ``synchronous=FULL``, idempotent on (device, ts).

    It is also the accounting store: dead letters, counts and collector health live here whichever sink
    takes the readings.
    """

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
        # 16 MiB: room for the pages each batch writes (a device-index leaf per device, the newest readings,
        # this hour's counts) for about 3,000 devices. A 64 MiB cache filled with readings already written and
        # held a collector's RSS 26 MB higher, for the same CPU per message (measured at 1,000 devices).
        self._db.execute("PRAGMA cache_size = -16384")
        if not readonly:
            # Each batch dirties one device-index page per device; checkpointing every 80 MB of WAL instead
            # of the default 4 MB writes those pages back once instead of many times (~1.6x throughput).
            self._db.execute("PRAGMA wal_autocheckpoint = 20000")
        self._migrate()

    @classmethod
    def from_settings(cls, settings: Settings) -> EmbeddedStore:
        """The store file ``settings.store`` (created when missing): always on, as the accounting store."""
        return cls(Path(settings.store))

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
            current = self._version()
            if current == 1:
                for statement in _MIGRATE_1_2:
                    db.execute(statement)
            if current < SCHEMA_VERSION:
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

    def _query(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, tuple(args)).fetchall()

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
                    _INSERT_DEADLETTER.run(db, _deadletter_rows(deadletters))
                if counts:
                    _UPSERT_COUNT.run(db, _count_rows(counts))
        except sqlite3.Error as exc:
            raise SinkError(f"embedded store {self.path}: {exc}") from exc

    @staticmethod
    def _insert_batch(db: sqlite3.Connection, batch: Batch) -> None:
        if batch.points:
            _INSERT_READING.run(db, [
                (p.device_id, p.ts_ms, p.domain, p.type, p.street, p.site, p.seq,
                 dumps(p.tags) if p.tags else "", dumps(p.values), p.period, dumps(p.flags) if p.flags else "",
                 dumps(p.invalid) if p.invalid else "", int(p.backfill))
                for p in batch.points
            ])
        if batch.statuses:
            _INSERT_STATUS.run(db, [
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

    def prune(self, deadletters_before_ms: int, deadletters_keep: int, counts_before_ms: int,
              unknown_before_ms: int) -> dict[str, int]:
        """Retention: dead letters received before a time and beyond the newest ``deadletters_keep``; accounting
        hours before ``counts_before_ms``, and those of device ids only ever rejected as unknown before
        ``unknown_before_ms`` (a flood of made-up ids must not stay for the accounting's full retention)."""
        with self._transaction() as db:
            dead = db.execute("DELETE FROM deadletters WHERE received_ms < ?", (deadletters_before_ms,)).rowcount
            dead += db.execute("DELETE FROM deadletters WHERE id <= (SELECT id FROM deadletters ORDER BY id DESC"
                               " LIMIT 1 OFFSET ?)", (max(0, deadletters_keep),)).rowcount
            counts = db.execute("DELETE FROM counts WHERE hour_ms < ?", (counts_before_ms,)).rowcount
            counts += db.execute(
                "DELETE FROM counts WHERE hour_ms < ? AND device_id IN (SELECT device_id FROM counts"
                " WHERE reason = 'unknown_device' AND hour_ms < ?) AND device_id NOT IN (SELECT device_id FROM"
                " counts WHERE outcome IN ('stored', 'spooled', 'replayed'))",
                (unknown_before_ms, unknown_before_ms)).rowcount
        return {"deadletters": dead, "counts": counts}

    def vacuum(self) -> None:
        """Give the space freed by ``prune`` back to the file system (rewrites the file; takes a while)."""
        with self._lock:
            self._db.execute("VACUUM")

    def flush(self) -> None:
        """Nothing to do: every transaction is fsynced at commit."""

    def close(self) -> None:
        """Close the connection (SQLite checkpoints the WAL when the last connection closes)."""
        with self._lock:
            self._db.close()


def _deadletter_rows(deadletters: Iterable[DeadLetter]) -> list[tuple[Any, ...]]:
    return [(d.received_ms, d.topic, bytes(d.payload), d.reason, d.detail, d.device_id, d.domain, d.source, d.mn)
            for d in deadletters]


def _count_rows(counts: Iterable[CountRow]) -> list[CountRow]:
    return [c for c in counts if c.n]


def dumps(value: dict[str, Any]) -> str:
    """Compact JSON text, non-ASCII kept as is (orjson: several times faster than json for a row's values)."""
    return orjson.dumps(value).decode()
