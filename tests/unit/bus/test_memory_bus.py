"""The in-process bus: publish waits for the storage group, groups split work, readers replay, leases expire."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest

from gulou.bus.base import BusFull, Envelope, ReaderClosed, SnapshotConflict, Topology
from gulou.bus.memory import InProcessBus


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


def msgs(count: int, partitions: int = 2, start: int = 0) -> list[Envelope]:
    return [Envelope("reading", i % partitions, f"r:d{i}:{i}", b"%d" % i) for i in range(start, start + count)]


def test_publish_completes_only_once_the_storage_group_acknowledged() -> None:
    async def body() -> None:
        bus = InProcessBus(Topology(2, partitioned=()))
        publish = asyncio.create_task(bus.publish(msgs(10)))
        sink = await bus.consumer("sink")
        got = await sink.fetch(100, 1.0)
        assert len(got) == 10
        await asyncio.sleep(0)
        assert not publish.done(), "acknowledged upstream before the store committed"
        await sink.ack(got[:5])
        await asyncio.sleep(0)
        assert not publish.done()
        await sink.ack(got[5:])
        result = await asyncio.wait_for(publish, 5)
        assert (result.stored, result.duplicates) == (10, 0)
        assert (await bus.stats()).messages == 0

    run(body())


def test_duplicates_by_id_are_stored_once() -> None:
    async def body() -> None:
        bus = InProcessBus(Topology(2, partitioned=()), wait_for=())
        assert (await bus.publish(msgs(10))).stored == 10
        again = await bus.publish(msgs(12))
        assert (again.stored, again.duplicates) == (2, 10)
        sink = await bus.consumer("sink")
        got = await sink.fetch(100, 0.2)
        assert sorted(d.msg_id for d in got) == sorted(e.msg_id for e in msgs(12))

    run(body())


def test_the_dedupe_window_ends() -> None:
    async def body() -> None:
        clock = Clock()
        bus = InProcessBus(Topology(1, partitioned=()), wait_for=(), dedupe_window_s=120, clock=clock)
        await bus.publish(msgs(1, 1))
        clock.now += 121
        assert (await bus.publish(msgs(1, 1))).stored == 1

    run(body())


def test_members_of_a_group_split_the_messages() -> None:
    async def body() -> None:
        bus = InProcessBus(Topology(2, partitioned=()), wait_for=())
        await bus.publish(msgs(100))
        a, b = await bus.consumer("sink"), await bus.consumer("sink")
        got_a, got_b = await a.fetch(60, 0.1), await b.fetch(60, 0.1)
        ids_a, ids_b = {d.msg_id for d in got_a}, {d.msg_id for d in got_b}
        assert len(ids_a) == 60 and len(ids_b) == 40 and not ids_a & ids_b

    run(body())


def test_unacknowledged_messages_are_redelivered_after_the_ack_wait() -> None:
    async def body() -> None:
        clock = Clock()
        bus = InProcessBus(Topology(1, partitioned=()), wait_for=(), ack_wait_s=30, clock=clock)
        await bus.publish(msgs(5, 1))
        dead = await bus.consumer("sink")
        taken = await dead.fetch(3, 0.1)
        await dead.close()
        other = await bus.consumer("sink")
        fresh = await other.fetch(10, 0.1)
        assert [d.attempt for d in fresh] == [1, 1]
        await other.ack(fresh)
        clock.now += 20
        await other.progress([])  # nothing of its own in progress
        assert await other.fetch(10, 0.1) == []
        clock.now += 11
        again = await other.fetch(10, 0.1)
        assert [d.msg_id for d in again] == [d.msg_id for d in taken]
        assert {d.attempt for d in again} == {2}

    run(body())


def test_progress_holds_back_the_redelivery() -> None:
    async def body() -> None:
        clock = Clock()
        bus = InProcessBus(Topology(1, partitioned=()), wait_for=(), ack_wait_s=30, clock=clock)
        await bus.publish(msgs(2, 1))
        slow = await bus.consumer("sink")
        held = await slow.fetch(10, 0.1)
        clock.now += 25
        await slow.progress(held)
        clock.now += 25
        assert await (await bus.consumer("sink")).fetch(10, 0.1) == []
        clock.now += 6
        assert len(await (await bus.consumer("sink")).fetch(10, 0.1)) == 2

    run(body())


def test_a_reader_replays_its_partition_in_order_from_a_snapshot() -> None:
    async def body() -> None:
        bus = InProcessBus(Topology(2), wait_for=())
        sent = msgs(40)
        await bus.publish(sent)
        mine = [e.msg_id for e in sent if e.partition == 1]
        first = await bus.reader("rules", 1, 0, "t1")
        seen = await first.fetch(8, 0.1)
        assert [d.msg_id for d in seen] == mine[:8]
        snap = await bus.snapshots.save("rules.p1", seen[-1].seq, b"state", 0)
        await first.ack(seen)
        await first.fetch(5, 0.1)  # read on, then die without committing
        second = await bus.reader("rules", 1, snap.seq, "t2")
        rest = await second.fetch(100, 0.1)
        assert [d.msg_id for d in rest] == mine[8:]
        with pytest.raises(ReaderClosed):
            await first.fetch(1, 0.1)
        with pytest.raises(ReaderClosed):
            await first.ack(seen)
        # Without a snapshot a reader resumes where the partition was last acknowledged.
        third = await bus.reader("rules", 1, 0, "t3")
        assert [d.msg_id for d in await third.fetch(100, 0.1)] == mine[8:]

    run(body())


def test_a_message_leaves_once_every_group_is_done_with_it() -> None:
    async def body() -> None:
        bus = InProcessBus(Topology(2), wait_for=())
        await bus.publish([*msgs(10), Envelope("dead", None, "d:1", b"x")])
        sink = await bus.consumer("sink")
        await sink.ack(await sink.fetch(100, 0.1))
        assert (await bus.stats()).messages == 10  # the rules readers still need the readings
        for p in (0, 1):
            reader = await bus.reader("rules", p, 0, "t")
            await reader.ack(await reader.fetch(100, 0.1))
        stats = await bus.stats()
        assert (stats.messages, stats.bytes) == (0, 0)
        assert stats.groups["sink"].pending == 0 and stats.groups["rules"].pending == 0

    run(body())


def test_a_full_bus_refuses_after_the_deadline() -> None:
    async def body() -> None:
        bus = InProcessBus(Topology(1, partitioned=()), wait_for=(), capacity=5)
        await bus.publish(msgs(5, 1))
        with pytest.raises(BusFull):
            await bus.publish(msgs(1, 1, start=5), timeout_s=0.2)
        sink = await bus.consumer("sink")
        waiting = asyncio.create_task(bus.publish(msgs(1, 1, start=5), timeout_s=5))
        await sink.ack(await sink.fetch(2, 0.1))
        assert (await waiting).stored == 1

    run(body())


def test_leases_are_exclusive_expire_and_change_hands() -> None:
    async def body() -> None:
        clock = Clock()
        bus = InProcessBus(lease_ttl_s=10, clock=clock)
        leases = bus.leases
        a = await leases.acquire("rules.p1", "a")
        assert a is not None and await leases.acquire("rules.p1", "b") is None
        clock.now += 6
        a2 = await leases.renew(a)
        assert a2 is not None and a2.valid(clock.now + 9)
        clock.now += 11
        assert not a2.valid(clock.now)
        b = await leases.acquire("rules.p1", "b")
        assert b is not None and b.revision > a2.revision
        assert await leases.renew(a2) is None
        await leases.release(a2)  # stale: changes nothing
        assert await leases.holders("rules.") == {"rules.p1": "b"}
        await leases.release(b)
        assert await leases.holders("rules.") == {}

    run(body())


def test_snapshots_are_compare_and_set() -> None:
    async def body() -> None:
        snaps = InProcessBus().snapshots
        assert await snaps.load("rules.p0") is None
        first = await snaps.save("rules.p0", 10, b"a", 0)
        with pytest.raises(SnapshotConflict):
            await snaps.save("rules.p0", 11, b"b", 0)
        second = await snaps.save("rules.p0", 12, b"c", first.revision)
        loaded = await snaps.load("rules.p0")
        assert loaded == second and (loaded.seq, loaded.data) == (12, b"c")
        with pytest.raises(SnapshotConflict):
            await snaps.save("rules.p0", 13, b"d", first.revision)

    run(body())
