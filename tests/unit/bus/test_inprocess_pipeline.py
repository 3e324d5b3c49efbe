"""The storage writer and the rules worker on the in-process bus: same code as on JetStream, no server."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from gulou.bus.base import Envelope, Topology
from gulou.bus.codec import envelope
from gulou.bus.memory import InProcessBus
from gulou.bus.partition import Partitioner
from gulou.bus.rules_worker import BusRulesWorker, to_item, transition_id
from gulou.bus.sink import BusSink, account
from gulou.devices.registry import Registry
from gulou.rules.alerts import AlertTransition
from gulou.rules.engine import Engine
from gulou.rules.model import load_rules
from gulou.sinks.embedded import EmbeddedStore
from gulou.tsdb.records import Batch, DeadLetter, Point

HOUR = 3_600_000
LEVELS = [0.3, 0.5, 0.85, 0.9, 0.97, 0.99, 0.6, 0.2]


def bins(registry: Registry, steps: int) -> list[Point]:
    """Twelve bins filling and being emptied, one reading a minute, two hours ago."""
    chosen = [d for d in registry if d.type == "smart_bin"][:12]
    base = int(time.time() * 1000) - 2 * HOUR
    return [Point(d.id, d.domain, d.type, d.street, d.site.id, base + s * 60_000,
                  {"fill_level": LEVELS[(s + i % 3) % len(LEVELS)], "temperature": 25.0}, seq=s)
            for s in range(steps) for i, d in enumerate(chosen)]


def test_accounting_counts_valid_messages_when_observed_and_rejects_when_received() -> None:
    p = Point("d1", "air", "air_station", "s", "x", 5 * HOUR + 10, {"pm25": 1.0})
    dead = DeadLetter("t", b"x", "malformed_json", "", 7 * HOUR + 5, "d1", "air")
    rows = {(r.hour_ms, r.outcome, r.reason): r.n for r in account(Batch([p, p]), [dead])}
    assert rows == {(5 * HOUR, "received", ""): 2, (5 * HOUR, "stored", ""): 2,
                    (7 * HOUR, "received", ""): 1, (7 * HOUR, "rejected", "malformed_json"): 1}


def test_the_sink_stores_readings_and_dead_letters_with_their_accounting(registry: Registry, tmp_path: Path) -> None:
    points = bins(registry, 10)
    parts = Partitioner(registry, 4)
    letters = [DeadLetter("gulou/waste/x/telemetry", b"{broken", "malformed_json", "d", int(time.time() * 1000))]
    store = EmbeddedStore(tmp_path / "store.db")

    async def body() -> None:
        bus = InProcessBus(Topology(4, partitioned=()))  # publish returns once the sink committed
        stop = asyncio.Event()
        sink = asyncio.create_task(BusSink(bus, store, batch_size=50).run(stop))
        sent = [envelope(p, parts.for_device(p.device_id)) for p in points] + [envelope(d, None) for d in letters]
        result = await asyncio.wait_for(bus.publish(sent), 30)
        assert result.stored == len(sent)
        # The same messages again (a collector that lost its MQTT acks): dropped by id, nothing counted twice.
        assert (await bus.publish(sent)).duplicates == len(sent)
        stop.set()
        await sink

    asyncio.run(body())
    totals = store.totals()
    assert (totals["received"], totals["stored"], totals["rejected"]) == (len(points) + 1, len(points), 1)
    assert len(store.query_readings(None, None, None, None, None)) == len(points)
    store.close()


def test_rules_workers_replaying_a_partition_send_each_transition_once(registry: Registry) -> None:
    points = bins(registry, 24)
    rules = load_rules(None)
    engine = Engine(rules, registry)
    expected: list[str] = []
    for p in points:
        item = to_item(p, registry)
        assert item is not None
        expected += [transition_id(t) for t in engine.evaluate(item).transitions]
    assert expected, "the readings fire and resolve alerts"
    parts = Partitioner(registry, 2)

    async def body() -> list[str]:
        bus = InProcessBus(Topology(2, groups=()), lease_ttl_s=0.6)
        sent: list[str] = []

        def dispatch(transitions: object, skip: frozenset[str] = frozenset()) -> None:
            assert isinstance(transitions, list) and not skip
            sent.extend(transition_id(t) for t in transitions if isinstance(t, AlertTransition))

        first = BusRulesWorker(bus, registry, rules, dispatch, "w-a", commit_every=10_000, commit_s=3600)
        stop_first = asyncio.Event()
        running = asyncio.create_task(first.run(stop_first))
        await bus.publish([envelope(p, parts.for_device(p.device_id)) for p in points])
        while len(sent) < len(expected):
            await asyncio.sleep(0.02)
        # The first worker dies without committing anything: its engines stop dead, then the process.
        for owned in list(first.owned.values()):
            assert owned.task is not None
            owned.task.cancel()
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        assert await bus.snapshots.load("rules.p0") is None and await bus.snapshots.load("rules.p1") is None
        # A second worker replays both partitions from the start.
        second = BusRulesWorker(bus, registry, rules, dispatch, "w-b", commit_s=0.05)
        stop_second = asyncio.Event()
        again = asyncio.create_task(second.run(stop_second))
        while second.evaluated < len(points):
            await asyncio.sleep(0.02)
        stop_second.set()
        await again
        assert second.suppressed == len(expected), "every replayed transition was recognised as sent"
        return sent

    sent = asyncio.run(asyncio.wait_for(body(), 60))
    assert sorted(sent) == sorted(expected) and len(set(sent)) == len(sent)


def test_envelopes_name_their_partition_and_kind(registry: Registry) -> None:
    p = bins(registry, 1)[0]
    env = envelope(p, 3)
    assert env == Envelope("reading", 3, f"r:{p.device_id}:{p.ts_ms}", env.body)
    assert json.loads(env.body)["site"] == p.site


def test_a_redelivery_of_what_was_stored_is_acknowledged_without_counting_it_again(
        registry: Registry, tmp_path: Path) -> None:
    points = bins(registry, 5)
    letter = DeadLetter("gulou/waste/x/telemetry", b"{broken", "malformed_json", "d", int(time.time() * 1000))
    store = EmbeddedStore(tmp_path / "store.db")
    now = [1000.0]

    async def body() -> None:
        bus = InProcessBus(Topology(2, partitioned=()), wait_for=(), ack_wait_s=30, clock=lambda: now[0])
        await bus.publish([envelope(p, 0) for p in points] + [envelope(letter, None)])
        sink = BusSink(bus, store)
        first = await bus.consumer("sink")
        taken = await first.fetch(100, 0.1)
        batch, dead = sink.split(taken)
        sink.commit(batch, dead)  # committed, then the ack is lost with the node that should have taken it
        now[0] += 31
        second = await bus.consumer("sink")
        again = await second.fetch(100, 0.1)
        assert {d.attempt for d in again} == {2} and len(again) == len(taken)
        assert await sink.handle(second, again, asyncio.Event())
        assert sink.totals.redelivered_skipped == len(taken)
        assert (await bus.stats()).messages == 0

    asyncio.run(body())
    totals = store.totals()
    assert (totals["received"], totals["stored"], totals["rejected"]) == (len(points) + 1, len(points), 1)
    store.close()
