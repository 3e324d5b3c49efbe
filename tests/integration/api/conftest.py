"""The API over a real workflow store, with two operators from a tokens file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gulou.api.app import create_app
from gulou.api.auth import Operators
from gulou.workflow.store import WorkflowStore
from tests.pg import fresh_database

TOKENS = {"张三": "token-zhangsan-0123456789", "李四": "token-lisi-0123456789ab"}
DISPATCH_SECRET = "dispatch-secret-for-tests"


def bearer(name: str) -> dict[str, str]:
    """The Authorization header of an operator."""
    return {"Authorization": f"Bearer {TOKENS[name]}"}


@pytest.fixture
def tokens_file(tmp_path: Path) -> Path:
    path = tmp_path / "operators.yaml"
    lines = ["operators:"] + [f"- {{name: {n}, token: {t}}}" for n, t in TOKENS.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WorkflowStore]:
    if request.param == "sqlite":
        wf = WorkflowStore(f"sqlite:///{tmp_path / 'gulou.db'}")
        yield wf
        wf.close()
    else:
        with fresh_database() as url:
            wf = WorkflowStore(url)
            yield wf
            wf.close()


@pytest.fixture
def app(store: WorkflowStore, tokens_file: Path) -> FastAPI:
    return create_app(store, Operators.load(tokens_file), dispatch_secret=DISPATCH_SECRET)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c
