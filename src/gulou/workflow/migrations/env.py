"""Alembic environment: runs on the connection ``gulou.workflow.db.migrate`` hands over, or on the URL given."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from gulou.workflow.db import VERSION_TABLE, metadata


def _run(connection: sa.Connection) -> None:
    # batch mode lets later revisions alter SQLite tables (SQLite has no ALTER COLUMN).
    context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


given = context.config.attributes.get("connection")
if given is not None:
    _run(given)
else:
    engine = sa.create_engine(context.config.get_main_option("sqlalchemy.url") or "sqlite://")
    with engine.begin() as conn:
        _run(conn)
