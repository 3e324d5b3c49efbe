"""The pipeline on the bus as real processes: Mosquitto → 2 collectors → 3-node JetStream → 2 sinks → store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gulou.devices.registry import Registry
from tests.bus_cluster import NatsCluster
from tests.integration.ingest.pipeline import (
    LogFollower,
    Message,
    Publisher,
    accounted,
    follow_log,
    reading_keys,
    run_in_thread,
    settled,
    start_ingest,
    stop_ingest,
)
from tests.servers import Mosquitto
from tests.waiting import wait_for

pytestmark = pytest.mark.integration
TOTAL = 30_000


def message_set(registry: Registry, count: int, invalid_every: int) -> list[Message]:
    """``count`` messages with distinct (device, ts) over the last hours, every n-th one broken the same way."""
    devices = [d for d in registry if d.type == "air_station"]
    base_ms = int(time.time() * 1000) - 3 * 3600 * 1000
    out: list[Message] = []
    for i in range(count):
        d = devices[i % len(devices)]
        topic = f"gulou/{d.domain}/{d.id}/telemetry"
        if i % invalid_every == 0:
            # The same broken payload again and again: each arrival is a message of its own.
            out.append(Message(topic, b'{"ts": 1, broken', False))
        else:
            body = {"ts": base_ms + i * 200, "seq": i, "pm25": 20.0 + i % 50, "pm10": 40.0}
            out.append(Message(topic, json.dumps(body).encode(), True))
    return out


def start_sink(bus_url: str, store: Path) -> subprocess.Popen[bytes]:
    """Run ``gulou sink`` as a real process."""
    return subprocess.Popen([sys.executable, "-m", "gulou", "sink", "--bus", bus_url, "--store", str(store),
                             "--log-level", "INFO"], env={**os.environ, "GULOU_BUS__PARTITIONS": "4"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def start_collector(mosquitto: Mosquitto, cluster: NatsCluster, tmp: Path, slot: int) -> subprocess.Popen[bytes]:
    """``gulou ingest --bus`` with a fixed client id per slot (a restart resumes the slot's MQTT session)."""
    return start_ingest(mosquitto.url, tmp / f"collector-{slot}.db", f"gulou-ingest-{slot}", "--bus",
                        cluster.bus_url, env={"GULOU_BUS__PARTITIONS": "4"})


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test started; whatever still runs at the end is stopped."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:
        if p.poll() is None:
            stop_ingest(p)


@pytest.mark.timeout(600)
# A collector SIGKILLed after the stream's ack but before its MQTT ack makes the broker redeliver what it had:
# readings come back under their content ids, dead letters under the ids the slot kept for them.
def test_every_reading_stored_once_through_a_leader_and_a_collector_sigkill(
        cluster: NatsCluster, own_mosquitto: Mosquitto, registry: Registry, tmp_path: Path,
        procs: list[subprocess.Popen[bytes]]) -> None:
    store = tmp_path / "store.db"
    messages = message_set(registry, TOTAL, invalid_every=97)
    valid = [m for m in messages if m.valid]
    sinks = [start_sink(cluster.bus_url, store) for _ in range(2)]
    collectors = [start_collector(own_mosquitto, cluster, tmp_path, slot) for slot in range(2)]
    procs.extend(sinks + collectors)
    logs: list[LogFollower] = [follow_log(p) for p in collectors]
    for p in sinks:
        follow_log(p)  # a process whose output nobody reads stalls once the pipe is full
    for log in logs:
        wait_for(lambda log=log: log.count("-> bus"), 60, "the collectors to join the bus")  # type: ignore[misc]

    publisher = Publisher(own_mosquitto.port, "bus-test-publisher")
    sender = run_in_thread(lambda: publisher.publish(messages))
    wait_for(lambda: accounted(store)["received"] >= TOTAL // 3 if store.exists() else False, 120,
             "a third of the messages stored")
    leader = cluster.meta_leader()
    assert leader is not None
    stream_leader = _stream_leader(cluster)
    cluster.node(stream_leader).kill()
    collectors[0].send_signal(signal.SIGKILL)
    collectors[0].wait(10)
    # The orchestrator restarts the slot with the same client id: it resumes the MQTT session and with it
    # the messages the killed process had received but not acknowledged.
    restarted = start_collector(own_mosquitto, cluster, tmp_path, 0)
    procs.append(restarted)
    follow_log(restarted)
    sender.join(timeout=300)
    assert not sender.is_alive(), "publisher did not finish"
    publisher.close()

    wait_for(lambda: settled(store, TOTAL), 300, f"{TOTAL} messages accounted for")
    # Acks sent to the killed node are lost: those messages come back after the ack wait. Wait until the
    # stream has nothing left for the sinks, then the accounting must still be exact.
    wait_for(lambda: sink_backlog(cluster.bus_url, store) == {"pending": 0, "unacked": 0}, 180,
             "every message acknowledged by a sink")
    stats = accounted(store)
    assert stats["received"] == TOTAL, stats
    assert stats["stored"] == len(valid) and stats["rejected"] == TOTAL - len(valid), stats
    keys = reading_keys(store)
    assert len(keys) == len(valid), "every valid reading stored, exactly once"
    shown = gulou_stats(cluster.bus_url, store)
    assert shown["received"] == TOTAL and shown["bus"]["replicas"] == 3, shown["bus"]
    # A collector on the bus reports its health to its own store, as `gulou health ingest` reads it.
    health = subprocess.run([sys.executable, "-m", "gulou", "health", "ingest", "--store",
                             str(tmp_path / "collector-1.db"), "--client-id", "gulou-ingest-1"], capture_output=True)
    assert health.returncode == 0, health.stdout.decode() + health.stderr.decode()


def gulou_stats(bus_url: str, store: Path) -> dict[str, Any]:
    """``gulou stats --bus --json``: the accounting and the stream's figures."""
    out = subprocess.run([sys.executable, "-m", "gulou", "stats", "--bus", bus_url, "--store", str(store), "--json"],
                         check=True, capture_output=True).stdout
    data: dict[str, Any] = json.loads(out)
    return data


def sink_backlog(bus_url: str, store: Path) -> dict[str, int]:
    """What the sink group has not acknowledged yet, as ``gulou stats --bus`` shows it."""
    backlog: dict[str, int] = gulou_stats(bus_url, store)["bus"]["groups"]["sink"]
    return backlog


def _stream_leader(cluster: NatsCluster) -> str:
    for node in cluster.nodes:
        if not node.running:
            continue
        jsz = node.monitor("/jsz?accounts=true&streams=true")
        for account in jsz.get("account_details") or []:
            for detail in account.get("stream_detail") or []:
                leader = (detail.get("cluster") or {}).get("leader")
                if detail.get("name") == "GULOU" and leader:
                    return str(leader)
    raise AssertionError("no stream leader known")
