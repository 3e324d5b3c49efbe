"""The ops HTTP server on a free loopback port: Prometheus text from snapshots, /healthz from verdicts."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from gulou.ops.health import State, Verdict
from gulou.ops.metrics import OpsServer, SnapshotCollector, collector_families, parse_listen, rules_families

HEALTH: dict[str, Any] = {
    "collector": "gulou-ingest-1", "connected": True, "stalled": False, "reconnects": 2, "received": 120,
    "stored": 100, "spooled": 5, "rejected": 15, "rejected_by_reason": {"bad_json": 10, "unknown_device": 5},
    "spool": {"depth": 1, "bytes": 2048, "max_bytes": 4096, "fill_ratio": 0.5},
    "age_at_store_ms": {"p50": 40, "p99": 900, "samples": 100}, "seconds_since_message": 0.4,
}
RULES: dict[str, Any] = {"queued": 3, "dropped": 0, "active_alerts": 2,
                         "engine": {"readings": 50, "transitions": 4},
                         "channels": {"mqtt": {"delivered": 4}, "webhook": {"delivered": 2, "kept": 1, "retries": 3}}}


@pytest.fixture
def server() -> Iterator[tuple[OpsServer, list[Verdict]]]:
    verdicts = [Verdict("gulou-ingest-1", State.OK)]
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(lambda: [HEALTH], collector_families))
    registry.register(SnapshotCollector(lambda: [RULES], rules_families))
    ops = OpsServer("127.0.0.1", 0, registry, lambda: verdicts)
    ops.start()
    yield ops, verdicts
    ops.stop()


def get(ops: OpsServer, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ops.port}{path}", timeout=5) as resp:
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_from_snapshots(server: tuple[OpsServer, list[Verdict]]) -> None:
    status, body = get(server[0], "/metrics")
    assert status == 200
    got = samples(body.decode())
    cid = (("collector", "gulou-ingest-1"),)
    assert got[("gulou_ingest_received_total", cid)] == 120
    assert got[("gulou_ingest_stored_total", cid)] == 100
    assert got[("gulou_ingest_reconnects_total", cid)] == 2
    by_reason = (("collector", "gulou-ingest-1"), ("reason", "bad_json"))
    assert got[("gulou_ingest_rejected_by_reason_total", by_reason)] == 10
    assert got[("gulou_ingest_spool_depth_batches", cid)] == 1
    assert got[("gulou_ingest_lag_seconds", (("collector", "gulou-ingest-1"), ("quantile", "0.99")))] == 0.9
    assert got[("gulou_alert_deliveries_total", (("channel", "webhook"),))] == 2
    assert got[("gulou_alert_delivery_failures_total", (("channel", "webhook"),))] == 1
    assert got[("gulou_rules_queued", ())] == 3


def test_healthz_follows_the_verdicts(server: tuple[OpsServer, list[Verdict]]) -> None:
    ops, verdicts = server
    status, body = get(ops, "/healthz")
    assert status == 200 and json.loads(body)["state"] == "ok"
    verdicts[0] = Verdict("gulou-ingest-1", State.DEGRADED, ("spooling",))
    status, body = get(ops, "/healthz")
    assert status == 200 and json.loads(body)["components"][0]["reasons"] == ["spooling"]
    verdicts[0] = Verdict("gulou-ingest-1", State.DOWN, ("not connected to the broker",))
    status, body = get(ops, "/healthz")
    assert status == 503 and json.loads(body)["state"] == "down"
    assert get(ops, "/nothing")[0] == 404


def test_parse_listen() -> None:
    assert parse_listen("127.0.0.1:9108") == ("127.0.0.1", 9108)
    assert parse_listen(":1883") == ("0.0.0.0", 1883)
    assert parse_listen("[::1]:9108") == ("::1", 9108)
    with pytest.raises(ValueError):
        parse_listen("localhost")
