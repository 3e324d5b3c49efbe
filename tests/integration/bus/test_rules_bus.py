"""Rules workers on the bus as real processes: scaled 1 → 3 → 2 (one SIGKILLed) while bins fill and empty.

The alert transitions a webhook receiver and an MQTT subscriber receive must equal a single-process reference
run, each exactly once, and nothing may be left firing, also when the SIGKILL lands while notifications are
in flight.
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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gulou.bus.base import Claim, Topology
from gulou.bus.codec import envelope
from gulou.bus.jetstream import JetStreamBus
from gulou.bus.lease import parse_partition_key, partition_key, preferred_owner, worker_key
from gulou.bus.partition import Partitioner
from gulou.bus.rules_worker import GROUP, to_item, transition_id
from gulou.devices.registry import Registry
from gulou.rules.alerts import AlertTransition
from gulou.rules.engine import Engine
from gulou.rules.model import load_rules
from gulou.tsdb.records import Point
from gulou.workflow.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, SignatureError, verify
from tests.bus_cluster import NatsCluster
from tests.integration.ingest.pipeline import follow_log, stop_ingest
from tests.servers import Mosquitto
from tests.waiting import wait_for

pytestmark = pytest.mark.integration
PARTITIONS = 4
LEVELS = [0.3, 0.5, 0.85, 0.9, 0.97, 0.99, 0.6, 0.2]
STEPS, CHUNKS = 40, 4
SECRET = "bus-webhook-secret"


def bin_readings(registry: Registry) -> list[Point]:
    """Sixty bins filling past both limits and being emptied, one reading a minute, over the last hours."""
    bins = [d for d in registry if d.type == "smart_bin"][:60]
    base = int(time.time() * 1000) - 3 * 3600 * 1000
    return [Point(d.id, d.domain, d.type, d.street, d.site.id, base + step * 60_000,
                  {"fill_level": LEVELS[(step + i % 3) % len(LEVELS)], "temperature": 25.0}, seq=step)
            for step in range(STEPS) for i, d in enumerate(bins)]


def publish(cluster: NatsCluster, registry: Registry, points: list[Point], chunks: range) -> None:
    """Put these chunks of the readings on the stream, partitioned by site, as the collectors would."""
    parts, size = Partitioner(registry, PARTITIONS), len(points) // CHUNKS

    async def go() -> None:
        bus = JetStreamBus(cluster.urls, Topology(PARTITIONS))
        await bus.start()
        for chunk in chunks:
            await bus.publish([envelope(p, parts.for_device(p.device_id))
                               for p in points[chunk * size:(chunk + 1) * size]])
        await bus.close()

    asyncio.run(go())


def reference(registry: Registry, points: list[Point]) -> tuple[list[set[str]], int]:
    """Transition ids after each chunk of a single-process run, and the alerts left firing at the end."""
    per_chunk, left = reference_devices(registry, points)
    return [set(chunk) for chunk in per_chunk], left


def reference_devices(registry: Registry, points: list[Point]) -> tuple[list[dict[str, str]], int]:
    """Each chunk's transition ids with their device, from a single-process run; and the alerts left firing."""
    engine = Engine(load_rules(None), registry)
    per_chunk: list[dict[str, str]] = []
    size = len(points) // CHUNKS
    for c in range(CHUNKS):
        ids: dict[str, str] = {}
        for p in points[c * size:(c + 1) * size]:
            item = to_item(p, registry)
            assert item is not None
            ids.update((transition_id(t), t.alert.device_id) for t in engine.evaluate(item).transitions)
        per_chunk.append(ids)
    return per_chunk, len(engine.book.active)


class WebhookReceiver:
    """A real HTTP endpoint counting the notifications it accepted (answered 200) per transition id.

    Each worker posts to its own path; posts to a path in ``hold`` get no answer until ``release`` is set
    (then a 503): they stand for notifications in flight, never delivered.
    """

    def __init__(self) -> None:
        self.accepted: list[str] = []
        self.held: list[str] = []
        self.bad = 0
        self.hold: set[str] = set()
        self.release = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                key = self.headers.get("Idempotency-Key", "")
                try:
                    verify(SECRET, body, self.headers.get(TIMESTAMP_HEADER), self.headers.get(SIGNATURE_HEADER))
                    good = json.loads(body).get("transition_id") == key != ""
                except (SignatureError, ValueError):
                    good = False
                if not good:
                    with receiver._lock:
                        receiver.bad += 1
                    return self._answer(400)
                if self.path in receiver.hold:
                    with receiver._lock:
                        receiver.held.append(key)
                    receiver.release.wait(300)
                    return self._answer(503)
                with receiver._lock:
                    receiver.accepted.append(key)
                return self._answer(200)

            def _answer(self, status: int) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the worker that posted it is gone

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        """The endpoint for one worker."""
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def seen(self) -> Counter[str]:
        """How often each transition id was accepted."""
        with self._lock:
            return Counter(self.accepted)

    def held_ids(self) -> set[str]:
        """Ids of the posts held without an answer so far."""
        with self._lock:
            return set(self.held)

    def close(self) -> None:
        """Answer what is held, stop serving."""
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


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
        payload = json.loads(msg.payload)
        key = payload.pop("transition_id")
        assert key == transition_id(AlertTransition.from_json(payload)), "the payload names its transition"
        with self._lock:
            self.ids.append(key)

    def seen(self) -> Counter[str]:
        """How often each transition id arrived."""
        with self._lock:
            return Counter(self.ids)

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


def start_worker(cluster: NatsCluster, mosquitto: Mosquitto, store: Path, webhook: str | None = None,
                 lease_ttl_s: float = 3.0) -> subprocess.Popen[bytes]:
    """``gulou rules run --bus`` on the event clock, with a short lease TTL so takeovers are quick."""
    env = {**os.environ, "GULOU_BUS__PARTITIONS": str(PARTITIONS), "GULOU_BUS__LEASE_TTL_S": str(lease_ttl_s)}
    if webhook is not None:
        env |= {"GULOU_WEBHOOK__URL": webhook, "GULOU_WEBHOOK__SECRET": SECRET}
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


async def read_claims(cluster: NatsCluster, keys: set[str]) -> dict[str, Claim | None]:
    """The claims on ``keys`` as the bus holds them."""
    bus = JetStreamBus(cluster.urls, Topology(PARTITIONS))
    await bus.start()
    try:
        return {k: await bus.claims.get(k) for k in keys}
    finally:
        await bus.close()


def all_sent(cluster: NatsCluster, keys: set[str]) -> bool:
    """Whether every claim on ``keys`` is marked sent (every channel of its worker delivered it)."""
    return all(c is not None and c.sent for c in asyncio.run(read_claims(cluster, keys)).values())


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
    listener = AlertSubscriber(own_mosquitto.port)
    hook = WebhookReceiver()

    def arrived(upto: int) -> bool:
        want = set().union(*expected[:upto + 1])
        return want <= set(listener.seen()) and want <= set(hook.seen())

    def start(n: int) -> subprocess.Popen[bytes]:
        return start_worker(cluster, own_mosquitto, tmp_path / f"alerts-{n}.db", hook.url(f"/w{n}"))

    try:
        workers.append(start(0))
        follow_log(workers[0])  # a process whose output nobody reads stalls once the pipe is full
        publish(cluster, registry, points, range(1))
        wait_for(lambda: arrived(0), 120, "the first chunk's transitions from one worker")

        workers.extend(start(n) for n in (1, 2))
        for w in workers[1:]:
            follow_log(w)
        # Scaled to three: every partition with the worker rendezvous hashing gives it, before the next chunk.
        placed = wait_for(lambda: balanced(cluster, 3), 120, "the partitions spread over three workers")
        held = placed or {}
        publish(cluster, registry, points, range(1, 2))
        wait_for(lambda: arrived(1), 120, "the second chunk's transitions from three workers")
        # Killed mid-incident, not mid-delivery (the test below kills with notifications in flight).
        wait_for(lambda: all_sent(cluster, expected[0] | expected[1]), 60, "the deliveries marked sent")

        # Down to two, the hard way: a worker that owns partitions dies mid-incident; they are taken over.
        victim = next(w for w in reversed(workers) if any(owner.endswith(f"-{w.pid}") for owner in held.values()))
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        publish(cluster, registry, points, range(2, 3))
        publish(cluster, registry, points, range(3, 4))
        wait_for(lambda: arrived(3), 180, "every transition after the takeover")
    finally:
        listener.close()
        hook.close()

    everything = set().union(*expected)
    for name, seen in (("MQTT", listener.seen()), ("webhook", hook.seen())):
        assert set(seen) == everything, f"{name}: the transitions of the single-process reference run"
        assert max(seen.values()) == 1, f"{name}: sent twice: {[i for i, n in seen.items() if n > 1][:5]}"
    assert hook.bad == 0, "every post signed and carrying its transition id"


@pytest.mark.timeout(600)
def test_a_sigkill_while_notifications_are_in_flight_leaves_them_to_the_next_owner(
        cluster: NatsCluster, own_mosquitto: Mosquitto, registry: Registry, tmp_path: Path,
        workers: list[subprocess.Popen[bytes]]) -> None:
    points = bin_readings(registry)
    chunks, _left = reference_devices(registry, points)
    parts = Partitioner(registry, PARTITIONS)
    listener = AlertSubscriber(own_mosquitto.port)
    hook = WebhookReceiver()

    async def read_unsent(partitions: set[int]) -> set[str]:
        bus = JetStreamBus(cluster.urls, Topology(PARTITIONS))
        await bus.start()
        out: set[str] = set()
        for p in partitions:
            snap = await bus.snapshots.load(partition_key(GROUP, p))
            if snap is not None:
                out |= {transition_id(AlertTransition.from_json(u)) for u in json.loads(snap.data)["unsent"]}
        await bus.close()
        return out

    try:
        # A longer lease than elsewhere: the placement must hold until the kill, also on a loaded machine.
        workers.extend(start_worker(cluster, own_mosquitto, tmp_path / f"alerts-{n}.db", hook.url(f"/w{n}"),
                                    lease_ttl_s=6.0) for n in range(2))
        followers = [follow_log(w) for w in workers]
        placed = wait_for(lambda: balanced(cluster, 2), 120, "the partitions shared by two workers") or {}
        # The victim is the worker with more partitions (hashing may give one worker all four).
        n, victim = max(enumerate(workers), key=lambda nw: sum(o.endswith(f"-{nw[1].pid}") for o in placed.values()))
        heir = workers[1 - n]
        hook.hold.add(f"/w{n}")
        theirs = {p for p, owner in placed.items() if owner.endswith(f"-{victim.pid}")}
        first = chunks[0]
        in_flight = {k for k, device in first.items() if parts.for_device(device) in theirs}
        assert in_flight, f"the victim has transitions to send: {placed}"
        publish(cluster, registry, points, range(1))

        # The victim's webhook posts get no answer; its MQTT publishes go out and are marked on the claims,
        # and its snapshots commit past the readings that made them: only the snapshot can tell the heir.
        wait_for(lambda: hook.held_ids(), 120, "a webhook post of the victim's in flight")
        wait_for(lambda: set(first) <= set(listener.seen()), 120, "every transition of the chunk on MQTT")

        def claimed_and_half_delivered() -> bool:
            claims = asyncio.run(read_claims(cluster, in_flight))
            return all(c is not None and c.owner.endswith(f"-{victim.pid}") and "mqtt" in c.done
                       and "webhook" not in c.done and not c.sent for c in claims.values())

        try:
            wait_for(claimed_and_half_delivered, 120, "the victim's claims delivered on MQTT, not by the webhook")
            wait_for(lambda: in_flight <= asyncio.run(read_unsent(theirs)), 120,
                     "the victim's snapshots listing what it has not sent")
        except AssertionError as exc:
            owners = Counter((c.owner, tuple(sorted(c.done)), c.sent) if c else None
                             for c in asyncio.run(read_claims(cluster, in_flight)).values())
            moves = [line for f in followers for line in f.text().splitlines()
                     if any(w in line for w in ("lease", "partition", "took over", "WARNING", "ERROR"))]
            raise AssertionError(f"{exc}\nclaims: {owners}\nworker logs:\n" + "\n".join(moves[-60:])) from None
        assert not set(hook.seen()) & in_flight, "nothing of the victim's accepted by the webhook"

        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        hook.release.set()  # the held posts are answered 503 to a dead worker: never delivered
        wait_for(lambda: set(first) <= set(hook.seen()), 180, "the heir sending what the victim never delivered")
        for chunk in range(1, CHUNKS):
            publish(cluster, registry, points, range(chunk, chunk + 1))
        everything = set().union(*chunks)
        wait_for(lambda: everything <= set(hook.seen()) and everything <= set(listener.seen()), 180,
                 "every later transition from the heir alone")
        log = stop_ingest(heir)
        assert "took over" in log, log[-3000:]
    finally:
        listener.close()
        hook.close()

    for name, seen in (("MQTT", listener.seen()), ("webhook", hook.seen())):
        assert set(seen) == everything, f"{name}: the transitions of the single-process reference run"
        assert max(seen.values()) == 1, f"{name}: sent twice: {[i for i, n in seen.items() if n > 1][:5]}"
    assert hook.bad == 0


@pytest.mark.timeout(600)
def test_readings_published_while_rules_were_down_are_evaluated_after_the_restart(
        cluster: NatsCluster, own_mosquitto: Mosquitto, registry: Registry, tmp_path: Path,
        workers: list[subprocess.Popen[bytes]]) -> None:
    points = bin_readings(registry)
    expected, _left = reference(registry, points)
    listener = AlertSubscriber(own_mosquitto.port)

    try:
        workers.append(start_worker(cluster, own_mosquitto, tmp_path / "alerts.db"))
        follow_log(workers[-1])
        publish(cluster, registry, points, range(1))
        wait_for(lambda: expected[0] <= set(listener.seen()), 120, "the first chunk's transitions")
        log = stop_ingest(workers[0])  # graceful: commits its snapshots and hands the partitions back
        assert "stopped: evaluated" in log, log[-2000:]
        during = set(listener.seen())
        publish(cluster, registry, points, range(1, CHUNKS))  # nobody evaluates these now
        assert set(listener.seen()) == during
        workers.append(start_worker(cluster, own_mosquitto, tmp_path / "alerts.db"))
        follow_log(workers[-1])  # a process whose output nobody reads stalls once the pipe is full
        wait_for(lambda: set().union(*expected) <= set(listener.seen()), 180, "the gap evaluated after the restart")
    finally:
        listener.close()
    seen = listener.seen()
    assert set(seen) == set().union(*expected) and max(seen.values()) == 1
