"""One endpoint for the collectors and the rules service of a process."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client import generate_latest

from gulou.ops.health import State
from gulou.ops.service import Endpoint
from gulou.sinks.embedded import EmbeddedStore


def test_endpoint_serves_collectors_and_rules() -> None:
    health: dict[str, Any] = {"collector": "gulou-ingest-1", "connected": True, "stalled": False, "received": 4}
    connected = [True]
    endpoint = Endpoint().add_collectors(lambda: [health]).add_rules(lambda: {"queued": 0}, lambda: connected[0])
    assert [v.state for v in endpoint.verdicts()] == [State.OK, State.OK]
    server = endpoint.serve("127.0.0.1:0")
    try:
        base = f"http://127.0.0.1:{server.port}"
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        assert 'gulou_ingest_received_total{collector="gulou-ingest-1"} 4.0' in text
        assert 'gulou_health_state{component="rules"} 0.0' in text
        connected[0] = False
        try:
            urllib.request.urlopen(f"{base}/healthz", timeout=5)
            raise AssertionError("a service that hears nothing must not answer 200")
        except urllib.error.HTTPError as exc:
            assert exc.code == 503
            assert json.loads(exc.read())["state"] == "down"
    finally:
        server.stop()


def test_endpoint_reads_collectors_from_the_store(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "gulou.db")
    endpoint = Endpoint().add_store_collectors(tmp_path / "gulou.db", "gulou-ingest-1")
    assert [v.state for v in endpoint.verdicts()] == [State.DOWN]  # nothing reported yet
    store.set_health("gulou-ingest-1-0", {"connected": True, "stalled": False, "received": 7})
    store.set_health("gulou-ingest-2", {"connected": False})
    store.close()
    assert [(v.component, v.state) for v in endpoint.verdicts()] == [("gulou-ingest-1-0", State.OK)]
    text = generate_latest(endpoint.registry).decode()
    assert 'gulou_ingest_received_total{collector="gulou-ingest-1-0"} 7.0' in text
    assert "gulou-ingest-2" not in text
