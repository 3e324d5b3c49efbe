"""Rules workers on the bus as real processes: scaled 1 → 3 → 2 (one SIGKILLed) while bins fill and empty.

The alert transitions an MQTT subscriber receives must equal a single-process reference run, each exactly
once, and nothing may be left firing.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gulou.bus.base import Topology
from gulou.bus.codec import envelope
from gulou.bus.jetstream import JetStreamBus
from gulou.bus.lease import parse_partition_key, preferred_owner, worker_key
from gulou.bus.partition import Partitioner
from gulou.bus.rules_worker import GROUP, to_item, transition_id
from gulou.devices.registry import Registry
from gulou.rules.alerts import AlertTransition
from gulou.rules.engine import Engine
from gulou.rules.model import load_rules
from gulou.tsdb.records import Point
from tests.bus_cluster import NatsCluster
from tests.integration.ingest.pipeline import follow_log, stop_ingest
from tests.servers import Mosquitto
from tests.waiting import wait_for

pytestmark = pytest.mark.integration
PARTITIONS = 4
LEVELS = [0.3, 0.5, 0.85, 0.9, 0.97, 0.99, 0.6, 0.2]
STEPS, CHUNKS = 40, 4


def bin_readings(registry: Registry) -> list[Point]:
    """Sixty bins filling past both limits and being emptied, one reading a minute, over the last hours."""
    bins = [d for d in registry if d.type == "smart_bin"][:60]
    base = int(time.time() * 1000) - 3 * 3600 * 1000
    return [Point(d.id, d.domain, d.type, d.street, d.site.id, base + step * 60_000,
                  {"fill_level": LEVELS[(step + i % 3) % len(LEVELS)], "temperature": 25.0}, seq=step)
            for step in range(STEPS) for i, d in enumerate(bins)]


def reference(registry: Registry, points: list[Point]) -> tuple[list[set[str]], int]:
    """Transition ids after each chunk of a single-process run, and the alerts left firing at the end."""
    engine = Engine(load_rules(None), registry)
    per_chunk: list[set[str]] = []
    size = len(points) // CHUNKS
    for c in range(CHUNKS):
        ids: set[str] = set()
        for p in points[c * size:(c + 1) * size]:
            item = to_item(p, registry)
            assert item is not None
            ids.update(transition_id(t) for t in engine.evaluate(item).transitions)
        per_chunk.append(ids)
    return per_chunk, len(engine.book.active)


class AlertSubscriber:
    """Collects every alert transition published on ``gulou/alerts/#``."""

    def __init__(self, port: int) -> None:
        self.ids: list[str] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bus-alert-listener")
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: c.subscribe("gulou/alerts/#", qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        transition = AlertTransition.from_json(json.loads(msg.payload))
        with self._lock:
            self.ids.append(transition_id(transition))

    def seen(self) -> Counter[str]:
        """How often each transition id arrived."""
        with self._lock:
            return Counter(self.ids)

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


def start_worker(cluster: NatsCluster, mosquitto: Mosquitto, store: Path) -> subprocess.Popen[bytes]:
    """``gulou rules run --bus`` on the event clock, with a short lease TTL so takeovers are quick."""
    env = {**os.environ, "GULOU_BUS__PARTITIONS": str(PARTITIONS), "GULOU_BUS__LEASE_TTL_S": "3"}
    return subprocess.Popen([sys.executable, "-m", "gulou", "rules", "run", "--bus", cluster.bus_url, "--broker",
                             mosquitto.url, "--store", str(store), "--clock", "event"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def balanced(cluster: NatsCluster, members: int) -> dict[int, str] | None:
    """Partition -> owner once ``members`` workers are alive and each partition has its preferred owner."""
    async def read() -> tuple[set[str], dict[int, str]]:
        bus = JetStreamBus(cluster.urls, Topology(PARTITIONS))
        await bus.start()
        alive = set((await bus.leases.holders(worker_key(GROUP, ""))).values())
        held = {p: owner for name, owner in (await bus.leases.holders(f"{GROUP}.p")).items()
                if (p := parse_partition_key(GROUP, name)) is not None}
        await bus.close()
        return alive, held

    alive, held = asyncio.run(read())
    if len(alive) != members or any(held.get(p) != preferred_owner(p, alive) for p in range(PARTITIONS)):
        return None
    return held


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Worker processes a test started; those still running at the end are stopped."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:
        if p.poll() is None:
            stop_ingest(p)


@pytest.mark.timeout(600)
def test_scaled_and_killed_workers_send_each_transition_once(
        cluster: NatsCluster, own_mosquitto: Mosquitto, registry: Registry, tmp_path: Path,
        workers: list[subprocess.Popen[bytes]]) -> None:
    points = bin_readings(registry)
    expected, left_firing = reference(registry, points)
    assert left_firing == 0 and all(expected), "the scenario fires and resolves alerts in every chunk"
    parts = Partitioner(registry, PARTITIONS)
    size = len(points) // CHUNKS
    listener = AlertSubscriber(own_mosquitto.port)

    async def publish(chunk: int) -> None:
        bus = JetStreamBus(cluster.urls, Topology(PARTITIONS))
        await bus.start()
        await bus.publish([envelope(p, parts.for_device(p.device_id))
                           for p in points[chunk * size:(chunk + 1) * size]])
        await bus.close()

    def arrived(upto: int) -> bool:
        seen = listener.seen()
        return set().union(*expected[:upto + 1]) <= set(seen)

    try:
        workers.append(start_worker(cluster, own_mosquitto, tmp_path / "alerts-0.db"))
        follow_log(workers[0])  # a process whose output nobody reads stalls once the pipe is full
        asyncio.run(publish(0))
        wait_for(lambda: arrived(0), 120, "the first chunk's transitions from one worker")

        workers.extend(start_worker(cluster, own_mosquitto, tmp_path / f"alerts-{n}.db") for n in (1, 2))
        for w in workers[1:]:
            follow_log(w)
        # Scaled to three: every partition with the worker rendezvous hashing gives it, before the next chunk.
        placed = wait_for(lambda: balanced(cluster, 3), 120, "the partitions spread over three workers")
        held = placed or {}
        asyncio.run(publish(1))
        wait_for(lambda: arrived(1), 120, "the second chunk's transitions from three workers")

        # Down to two, the hard way: a worker that owns partitions dies mid-incident; they are taken over.
        victim = next(w for w in reversed(workers) if any(owner.endswith(f"-{w.pid}") for owner in held.values()))
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        asyncio.run(publish(2))
        asyncio.run(publish(3))
        wait_for(lambda: arrived(3), 180, "every transition after the takeover")
    finally:
        listener.close()

    seen = listener.seen()
    assert set(seen) == set().union(*expected), "the transitions of the single-process reference run"
    assert max(seen.values()) == 1, f"sent twice: {[i for i, n in seen.items() if n > 1][:5]}"


@pytest.mark.timeout(600)
def test_readings_published_while_rules_were_down_are_evaluated_after_the_restart(
        cluster: NatsCluster, own_mosquitto: Mosquitto, registry: Registry, tmp_path: Path,
        workers: list[subprocess.Popen[bytes]]) -> None:
    points = bin_readings(registry)
    expected, _left = reference(registry, points)
    parts = Partitioner(registry, PARTITIONS)
    size = len(points) // CHUNKS
    listener = AlertSubscriber(own_mosquitto.port)

    async def publish(chunks: range) -> None:
        bus = JetStreamBus(cluster.urls, Topology(PARTITIONS))
        await bus.start()
        for chunk in chunks:
            await bus.publish([envelope(p, parts.for_device(p.device_id))
                               for p in points[chunk * size:(chunk + 1) * size]])
        await bus.close()

    try:
        workers.append(start_worker(cluster, own_mosquitto, tmp_path / "alerts.db"))
        follow_log(workers[-1])
        asyncio.run(publish(range(1)))
        wait_for(lambda: expected[0] <= set(listener.seen()), 120, "the first chunk's transitions")
        log = stop_ingest(workers[0])  # graceful: commits its snapshots and hands the partitions back
        assert "stopped: evaluated" in log, log[-2000:]
        during = set(listener.seen())
        asyncio.run(publish(range(1, CHUNKS)))  # nobody evaluates these now
        assert set(listener.seen()) == during
        workers.append(start_worker(cluster, own_mosquitto, tmp_path / "alerts.db"))
        follow_log(workers[-1])  # a process whose output nobody reads stalls once the pipe is full
        wait_for(lambda: set().union(*expected) <= set(listener.seen()), 180, "the gap evaluated after the restart")
    finally:
        listener.close()
    seen = listener.seen()
    assert set(seen) == set().union(*expected) and max(seen.values()) == 1
