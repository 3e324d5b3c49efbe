"""``gulou ingest --workers N --client-id ID``: N collector processes in one shared group, ids ``ID-0`` …"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gulou.devices.registry import Registry
from tests.integration.ingest.pipeline import (
    Publisher,
    accounted,
    reading_keys,
    settled,
    stop_ingest,
    telemetry_set,
)
from tests.servers import Mosquitto
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


def test_workers_with_a_client_id_each_connect_and_store(own_mosquitto: Mosquitto, registry: Registry,
                                                         tmp_path: Path) -> None:
    store = tmp_path / "g.db"
    workers = ["foo-0", "foo-1"]
    # The flags in the order of the bug report: --workers before --client-id and its value.
    proc = subprocess.Popen(
        [sys.executable, "-m", "gulou", "ingest", "--workers", "2", "--client-id", "foo", "--broker",
         own_mosquitto.url, "--store", str(store), "--log-level", "INFO"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )

    def health(cid: str) -> dict[str, object]:
        snapshot: dict[str, object] = accounted(store)["collectors"].get(cid, {})
        return snapshot

    try:
        wait_for(lambda: proc.poll() is not None
                 or (store.exists() and all(health(w).get("connected") is True for w in workers)),
                 30, "both workers connected")
        assert proc.poll() is None, stop_ingest(proc)
        messages = telemetry_set(registry, 2000)
        pub = Publisher(own_mosquitto.port, "it-pub-workers")
        pub.publish(messages)
        pub.close()
        wait_for(lambda: settled(store, len(messages)), 60, "all messages accounted")
        # Each worker writes its own figures with its health, every few seconds.
        wait_for(lambda: sum(int(str(health(w).get("stored", 0))) for w in workers) == len(messages), 20,
                 "each worker's health counting what it stored")
    finally:
        log = stop_ingest(proc)
    assert proc.returncode == 0, log
    assert "unexpected extra argument" not in log
    stats = accounted(store)
    assert stats["received"] == stats["stored"] == len(messages), log
    assert len(reading_keys(store)) == len(messages)
    per_worker = [stats["collectors"][w]["stored"] for w in workers]
    assert all(n > 0 for n in per_worker), per_worker
    assert sorted(stats["collectors"]) == workers
