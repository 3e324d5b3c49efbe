"""``gulou health``'s readers: the store's health table (a real SQLite file) and a service's /healthz."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.registry import CollectorRegistry

from gulou.ops.check import check_collectors, check_url
from gulou.ops.health import State, Verdict
from gulou.ops.metrics import OpsServer
from gulou.sinks.embedded import EmbeddedStore

GOOD = {"connected": True, "stalled": False, "reconnects": 0, "spool": {}}


def store_with(path: Path, **reports: dict[str, object]) -> Path:
    store = EmbeddedStore(path)
    for cid, health in reports.items():
        store.set_health(cid, dict(health))
    store.close()
    return path


def test_missing_store_is_down_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "nothing" / "gulou.db"
    [verdict] = check_collectors(path, "gulou-ingest-1")
    assert verdict.state is State.DOWN and "no store" in verdict.reasons[0]
    assert not path.exists()


def test_collectors_of_one_slot(tmp_path: Path) -> None:
    path = store_with(tmp_path / "gulou.db", **{"gulou-ingest-1-0": GOOD,
                                                "gulou-ingest-1-1": {**GOOD, "stalled": True},
                                                "gulou-ingest-2": {**GOOD, "connected": False}})
    verdicts = {v.component: v.state for v in check_collectors(path, "gulou-ingest-1")}
    assert verdicts == {"gulou-ingest-1-0": State.OK, "gulou-ingest-1-1": State.DOWN}
    [missing] = check_collectors(path, "gulou-ingest-3")
    assert missing.state is State.DOWN


def test_a_report_that_stopped_coming_is_down(tmp_path: Path) -> None:
    path = store_with(tmp_path / "gulou.db", **{"gulou-ingest-1": GOOD})
    later = int(time.time() * 1000) + 60_000
    [verdict] = check_collectors(path, "gulou-ingest-1", now_ms=later)
    assert verdict.state is State.DOWN and "ago" in verdict.reasons[0]


@pytest.fixture
def healthz() -> Iterator[tuple[str, list[Verdict]]]:
    verdicts = [Verdict("rules", State.DEGRADED, ("webhook failing",))]
    ops = OpsServer("127.0.0.1", 0, CollectorRegistry(), lambda: verdicts)
    ops.start()
    yield f"http://127.0.0.1:{ops.port}/healthz", verdicts
    ops.stop()


def test_check_url_reads_healthz(healthz: tuple[str, list[Verdict]]) -> None:
    url, verdicts = healthz
    [verdict] = check_url(url)
    assert verdict.state is State.DEGRADED and verdict.reasons == ("webhook failing",)
    verdicts[0] = Verdict("rules", State.DOWN, ("not connected",))
    assert check_url(url)[0].state is State.DOWN
    [nobody] = check_url("http://127.0.0.1:9/healthz", timeout_s=1)
    assert nobody.state is State.DOWN
