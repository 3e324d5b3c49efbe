"""Scale-down on the bus: draining a departing collector's MQTT session publishes what it held, once."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gulou.devices.registry import Registry
from tests.bus_cluster import NatsCluster
from tests.integration.bus.test_pipeline_bus import start_collector, start_sink
from tests.integration.ingest.pipeline import (
    Publisher,
    accounted,
    follow_log,
    reading_keys,
    stop_ingest,
    telemetry_set,
)
from tests.servers import Mosquitto
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


@pytest.mark.timeout(300)
def test_bus_drain_publishes_the_departed_share_once(own_mosquitto: Mosquitto, single_node: NatsCluster,
                                                     registry: Registry, tmp_path: Path) -> None:
    store = tmp_path / "sink.db"
    sink = start_sink(single_node.bus_url, store)
    follow_log(sink)
    slots = {n: start_collector(own_mosquitto, single_node, tmp_path, n) for n in (1, 2)}
    logs = {n: follow_log(p) for n, p in slots.items()}
    messages = telemetry_set(registry, 1500)
    try:
        wait_for(lambda: all(log.count("connected to") for log in logs.values()), 60, "both collectors subscribed")
        stop_ingest(slots.pop(2))  # slot 2 leaves; its session keeps taking a share of the group
        pub = Publisher(own_mosquitto.port, "it-bus-drain-pub")
        pub.publish(messages)
        pub.close()
        drain = subprocess.run(
            [sys.executable, "-m", "gulou", "ingest", "--broker", own_mosquitto.url, "--store",
             str(tmp_path / "collector-2.db"), "--client-id", "gulou-ingest-2", "--bus", single_node.bus_url,
             "--drain", "--log-level", "INFO"],
            capture_output=True, text=True, timeout=120, env={**os.environ, "GULOU_BUS__PARTITIONS": "4"},
        )
        out = drain.stdout + drain.stderr
        assert drain.returncode == 0, out
        drained = re.search(r"drained gulou-ingest-2: received (\d+), published (\d+)", out)
        assert drained is not None and "session ended" in out, out
        assert 0 < int(drained.group(1)) < len(messages), out
        wait_for(lambda: len(reading_keys(store)) >= len(messages), 120, "every reading stored by the sink")
    finally:
        for p in slots.values():
            stop_ingest(p)
        sink_log = stop_ingest(sink)
    stats = accounted(store)
    assert len(reading_keys(store)) == len(messages), sink_log
    assert stats["stored"] == len(messages), stats
