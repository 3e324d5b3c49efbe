"""``gulou sink`` in front of VictoriaMetrics (InfluxDB write API): an outage leaves the data in the stream."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gulou.bus.base import Topology
from gulou.bus.codec import envelope
from gulou.bus.jetstream import JetStreamBus
from gulou.bus.partition import Partitioner
from gulou.devices.registry import Registry
from gulou.tsdb.records import Point
from tests.bus_cluster import NatsCluster
from tests.integration.ingest.pipeline import accounted, follow_log, stop_ingest
from tests.tsdb import VictoriaMetrics
from tests.waiting import wait_for

pytestmark = pytest.mark.integration
PARTITIONS = 4


def air_points(registry: Registry, count: int, start: int) -> list[Point]:
    """Distinct PM2.5 readings of the air stations over the last hours."""
    stations = [d for d in registry if d.type == "air_station"]
    base = int(time.time() * 1000) - 3 * 3600 * 1000
    return [Point(d.id, d.domain, d.type, d.street, d.site.id, base + i * 1000, {"pm25": 20.0 + i % 40}, seq=i)
            for i in range(start, start + count) for d in (stations[i % len(stations)],)]


@pytest.mark.timeout(600)
def test_a_store_outage_behind_the_sink_loses_nothing_and_writes_nothing_twice(
        cluster: NatsCluster, victoria_metrics: VictoriaMetrics, registry: Registry, tmp_path: Path) -> None:
    parts = Partitioner(registry, PARTITIONS)
    bus = JetStreamBus(cluster.urls, Topology(PARTITIONS, partitioned=()))

    def publish(points: list[Point]) -> None:
        async def body() -> None:
            await bus.start()
            await bus.publish([envelope(p, parts.for_device(p.device_id)) for p in points])
            await bus.close()
        asyncio.run(body())

    def in_stream() -> int:
        async def body() -> int:
            await bus.start()
            stats = await bus.stats()
            await bus.close()
            return stats.groups["sink"].pending + stats.groups["sink"].unacked
        return asyncio.run(body())

    env = {**os.environ, "GULOU_BUS__PARTITIONS": str(PARTITIONS), "GULOU_INFLUX_URL": victoria_metrics.url,
           "GULOU_INFLUX_ORG": "gulou", "GULOU_INFLUX_BUCKET": "gulou", "GULOU_INFLUX_TOKEN": "not-checked"}
    store = tmp_path / "accounting.db"
    sink = subprocess.Popen([sys.executable, "-m", "gulou", "sink", "--bus", cluster.bus_url, "--store",
                             str(store)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    follow_log(sink)
    try:
        publish(air_points(registry, 2000, 0))
        wait_for(lambda: victoria_metrics.count_samples("air_pm25") == 2000, 120, "the first readings stored")

        victoria_metrics.stop()
        publish(air_points(registry, 3000, 2000))
        # The sink cannot write: the readings wait in the stream, not in a spool, not dropped.
        wait_for(lambda: in_stream() == 3000, 60, "the readings waiting in the stream")
        victoria_metrics.start()
        wait_for(lambda: victoria_metrics.count_samples("air_pm25") == 5000, 180, "every reading after the outage")
        wait_for(lambda: in_stream() == 0, 60, "the stream emptied by the sink's acks")
    finally:
        log = stop_ingest(sink)
    assert "store unavailable" in log, "the outage was seen by the sink"
    stats = accounted(store)
    assert stats["received"] == 5000 and stats["stored"] == 5000, stats
