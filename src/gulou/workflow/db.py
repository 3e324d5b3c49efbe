"""The workflow schema (SQLAlchemy Core), one engine per database URL, and migrations to the newest revision."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect, Engine

log = logging.getLogger(__name__)
VERSION_TABLE = "workflow_alembic_version"
metadata = sa.MetaData()


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; SQLite keeps naive UTC text, PostgreSQL ``timestamptz``."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes; store UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the workflow store")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Attach UTC to what SQLite gives back."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ts(name: str, nullable: bool = True) -> sa.Column[Any]:
    return sa.Column(name, UtcDateTime(), nullable=nullable)


alerts = sa.Table(
    "workflow_alerts", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("alert_id", sa.String(300), nullable=False, unique=True),
    sa.Column("rule_id", sa.String(100), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("device_id", sa.String(100), nullable=False),
    sa.Column("site", sa.String(100), nullable=False),
    sa.Column("site_name", sa.String(200), nullable=False),
    sa.Column("street", sa.String(50), nullable=False),
    sa.Column("domain", sa.String(20), nullable=False),
    sa.Column("severity", sa.String(20), nullable=False),
    sa.Column("condition", sa.String(10), nullable=False),
    sa.Column("status", sa.String(15), nullable=False),
    sa.Column("value", sa.Float), sa.Column("limit", sa.Float), sa.Column("exceedance", sa.Float),
    sa.Column("standard", sa.Text, nullable=False), sa.Column("message", sa.Text, nullable=False),
    sa.Column("message_en", sa.Text, nullable=False),
    _ts("first_seen", False), _ts("last_seen", False), _ts("resolved_at"),
    sa.Column("acked_by", sa.String(100)), _ts("acked_at"), sa.Column("ack_note", sa.Text),
    sa.Column("assignee", sa.String(100)), sa.Column("assignee_kind", sa.String(10)),
    sa.Column("assigned_by", sa.String(100)), _ts("assigned_at"),
    sa.Column("escalation_level", sa.Integer, nullable=False), _ts("escalated_at"),
    sa.Column("closed_by", sa.String(100)), _ts("closed_at"), sa.Column("close_note", sa.Text),
    sa.Column("silence_id", sa.Integer), sa.Column("work_order_id", sa.String(64)),
    sa.Column("work_order_status", sa.String(15)),
    sa.Column("version", sa.Integer, nullable=False),
    _ts("updated_at", False), sa.Column("updated_by", sa.String(100)),
    sa.Index("workflow_alerts_status", "status", "condition"),
    sa.Index("workflow_alerts_first_seen", "first_seen"),
)

history = sa.Table(
    "workflow_history", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("alert", sa.Integer, nullable=True),
    sa.Column("silence", sa.Integer, nullable=True),
    _ts("at", False),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("note", sa.Text),
    sa.Column("detail", sa.JSON, nullable=False),
    sa.Index("workflow_history_alert", "alert", "id"),
)

silences = sa.Table(
    "workflow_silences", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("device_id", sa.String(200)), sa.Column("site", sa.String(200)), sa.Column("street", sa.String(200)),
    sa.Column("rule_id", sa.String(200)), sa.Column("domain", sa.String(200)),
    _ts("starts_at", False), _ts("ends_at", False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(100), nullable=False), _ts("created_at", False),
    sa.Column("updated_by", sa.String(100)), _ts("updated_at"),
    sa.Column("cancelled_by", sa.String(100)), _ts("cancelled_at"),
)

outbox = sa.Table(
    "workflow_outbox", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("channel", sa.String(40), nullable=False),
    sa.Column("alert", sa.Integer, nullable=False),
    sa.Column("event", sa.String(20), nullable=False),
    sa.Column("severity", sa.String(20), nullable=False),
    sa.Column("rule_id", sa.String(100), nullable=False),
    _ts("created_at", False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    _ts("next_attempt_at"),
    sa.Column("message", sa.Integer),
    _ts("sent_at"),
    sa.Index("workflow_outbox_waiting", "channel", "sent_at", "id"),
)

messages = sa.Table(
    "workflow_messages", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("channel", sa.String(40), nullable=False),
    _ts("sent_at", False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("items", sa.Integer, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Index("workflow_messages_channel", "channel", "sent_at"),
)

work_orders = sa.Table(
    "workflow_work_orders", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("alert", sa.Integer, nullable=False),
    sa.Column("status", sa.String(15), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_error", sa.Text),
    sa.Column("note", sa.Text), sa.Column("photo_url", sa.Text),
    _ts("created_at", False), _ts("updated_at", False),
    _ts("next_attempt_at"),
)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # The store file is shared with the collector and the rules engine: WAL and a generous busy wait.
    cursor.execute("PRAGMA busy_timeout = 10000")
    cursor.execute("PRAGMA journal_mode = WAL")
    # WAL with NORMAL survives a crash of the process (not of the machine) without an fsync per commit; bursts
    # of engine events need it. The collector's own connection keeps FULL for readings.
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


def create_engine(url: str) -> Engine:
    """An engine for the URL (SQLite file or PostgreSQL), with the SQLite pragmas the shared file needs."""
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            from pathlib import Path

            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` with the migrations shipped in ``gulou.workflow.migrations``."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.files("gulou.workflow") / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    """The applied migration revision, or None on an empty database."""
    from alembic.migration import MigrationContext

    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def _immediate_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue the BEGIN, so it can be IMMEDIATE.
    dbapi_connection.isolation_level = None


def _immediate_begin(connection: sa.Connection) -> None:
    # A write transaction takes the write lock up front: two operators acking at once then queue and the
    # second sees the first's change (a clear conflict) instead of failing with "database is locked".
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def writer_engine(url: str) -> Engine:
    """The engine for read-modify-write transactions (on SQLite: BEGIN IMMEDIATE)."""
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _immediate_connect)
        sa.event.listen(engine, "begin", _immediate_begin)
    return engine


def write_history(connection: sa.Connection, *, at: datetime, actor: str, action: str, note: str | None = None,
                  detail: dict[str, Any] | None = None, alert: int | None = None,
                  silence: int | None = None) -> None:
    """Append one history line (alert or silence) in the caller's transaction."""
    connection.execute(history.insert().values(alert=alert, silence=silence, at=at, actor=actor, action=action,
                                               note=note, detail=detail or {}))


def new_id(result: sa.CursorResult[Any]) -> int:
    """The primary key an INSERT created."""
    key = result.inserted_primary_key
    if key is None:
        raise RuntimeError("the database returned no key for a new row")
    return int(key[0])


def relaxed_commit(connection: sa.Connection) -> None:
    """On PostgreSQL, let this transaction's commit return before its WAL reaches disk (engine events only).

    A server crash can lose the last moments of engine events, which the engine's own store also keeps;
    operators' actions keep the full guarantee.
    """
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
