"""The workflow store on both databases: the embedded SQLite file and a fresh PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gulou.workflow.store import WorkflowStore
from tests.pg import fresh_database


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database of its own for this module."""
    with fresh_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test runs on SQLite and on PostgreSQL (a fresh database per test)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'gulou.db'}"
    else:
        with fresh_database() as url:
            yield url


@pytest.fixture
def store(db_url: str) -> Iterator[WorkflowStore]:
    """A migrated workflow store."""
    wf = WorkflowStore(db_url)
    try:
        yield wf
    finally:
        wf.close()
