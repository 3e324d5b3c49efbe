"""The API served by uvicorn on a free port, spoken to over real HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from gulou.workflow.store import WorkflowStore
from tests.integration.api.conftest import bearer
from tests.servers import free_port, wait_for_port
from tests.workflow_data import T0, payload

pytestmark = pytest.mark.integration


@pytest.fixture
def base_url(app: FastAPI) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="api-under-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped before it listened"
        assert time.monotonic() < deadline, f"uvicorn did not listen on {port} within 20 s"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_two_operators_ack_over_http_one_wins(base_url: str, store: WorkflowStore) -> None:
    alert, _ = store.record_engine_event(payload(severity="critical"), T0)

    def ack(name: str) -> httpx.Response:
        return httpx.post(f"{base_url}/alerts/{alert.id}/ack", json={"note": name, "version": 1},
                          headers=bearer(name), timeout=30)

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(ack, ["张三", "李四"]))
    codes = sorted(a.status_code for a in answers)
    assert codes == [200, 409], [a.text for a in answers]
    winner = next(a for a in answers if a.status_code == 200).json()["acked_by"]
    loser = next(a for a in answers if a.status_code == 409).json()["detail"]
    assert winner in loser or "changed" in loser
    listed = httpx.get(f"{base_url}/alerts", params={"status": "acknowledged"}, headers=bearer("张三")).json()
    assert [(a["id"], a["acked_by"]) for a in listed] == [(alert.id, winner)]


def test_openapi_and_docs_are_served(base_url: str) -> None:
    spec = httpx.get(f"{base_url}/openapi.json").json()
    assert spec["info"]["title"] == "Gulou alert workflow"
    assert httpx.get(f"{base_url}/docs").status_code == 200
    assert httpx.get(f"{base_url}/alerts").status_code == 401


def test_gulou_serve_answers_with_the_tokens_file(tmp_path: Path, tokens_file: Path) -> None:
    port = free_port()
    store = tmp_path / "serve.db"
    env = {**os.environ, "GULOU_API__TOKENS_FILE": str(tokens_file), "GULOU_STORE": str(store),
           "GULOU_LOG_LEVEL": "WARNING"}
    env.pop("GULOU_DATABASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "gulou", "serve", "--listen", f"127.0.0.1:{port}"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(port, timeout=60, proc=proc)
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
        assert httpx.get(f"{base}/alerts").status_code == 401
        created = httpx.post(f"{base}/silences", headers=bearer("李四"), json={
            "site": "baima-02", "starts_at": "2026-05-06T13:00:00+08:00", "ends_at": "2026-05-06T17:00:00+08:00",
            "reason": "浮标校准"})
        assert created.status_code == 201 and created.json()["created_by"] == "李四"
    finally:
        proc.terminate()
        proc.wait(30)
    missing = subprocess.run([sys.executable, "-m", "gulou", "serve", "--listen", f"127.0.0.1:{free_port()}"],
                             env={k: v for k, v in env.items() if k != "GULOU_API__TOKENS_FILE"},
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode != 0 and "GULOU_API__TOKENS_FILE" in missing.stderr
