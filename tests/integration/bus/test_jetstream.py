"""The JetStream bus against a real 3-node cluster: leader loss, consumer death, lease takeover, snapshots."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from gulou.bus.base import BusFull, Delivery, Envelope, ReaderClosed, SnapshotConflict, Topology
from gulou.bus.jetstream import JetStreamBus
from tests.bus_cluster import NatsCluster, NatsNode

pytestmark = pytest.mark.integration
T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[3]


async def eventually(probe: Callable[[], Awaitable[T | None]], what: str, timeout: float = 60.0) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = await probe()
        if result:
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout} s")


def readings(count: int, partitions: int, start: int = 0) -> list[Envelope]:
    """Distinct readings spread over the partitions."""
    return [Envelope("reading", i % partitions, f"r:dev-{i}:{1_700_000_000_000 + i}", b'{"v":%d}' % i)
            for i in range(start, start + count)]


async def drain(bus: JetStreamBus, group: str, expected: int, timeout: float = 90.0) -> list[Delivery]:
    """Consume and acknowledge from a shared group until ``expected`` deliveries arrived."""
    consumer = await bus.consumer(group)
    got: list[Delivery] = []
    deadline = time.monotonic() + timeout
    while len(got) < expected and time.monotonic() < deadline:
        batch = await consumer.fetch(500, 1.0)
        await consumer.ack(batch)
        got.extend(batch)
    await consumer.close()
    return got


def agent(cluster: NatsCluster, *args: str) -> subprocess.Popen[str]:
    """Start the test agent in its own process."""
    return subprocess.Popen([sys.executable, "-m", "tests.integration.bus.agent", args[0], cluster.bus_url, *args[1:]],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def agent_line(proc: subprocess.Popen[str]) -> dict[str, Any]:
    """The agent's JSON report (it prints one line once it has done its part)."""
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise AssertionError(f"agent exited with {proc.wait(5)}: {proc.stderr.read() if proc.stderr else ''}")
    data: dict[str, Any] = json.loads(line)
    return data


def test_provisioning_is_idempotent_and_replicated(cluster: NatsCluster) -> None:
    async def body() -> None:
        first, second = JetStreamBus(cluster.urls, Topology(4)), JetStreamBus(cluster.urls, Topology(8))
        await asyncio.gather(first.start(), second.start())
        info = await first.js.stream_info("GULOU")
        assert info.config.num_replicas == 3
        # The partition count is the stream's, whoever asked for another.
        assert {first.partitions, second.partitions} == {int((info.config.description or "").rsplit("=", 1)[1])}
        names = {c.name for c in await first.js.consumers_info("GULOU")}
        parts = first.partitions
        assert names == {"sink", *(f"rules-p{p}-g0" for p in range(parts))}
        for bucket in ("KV_gulou_leases", "KV_gulou_snapshots"):
            assert (await first.js.stream_info(bucket)).config.num_replicas == 3
        again = JetStreamBus(cluster.urls, Topology(parts))
        await again.start()
        assert {c.name for c in await again.js.consumers_info("GULOU")} == names
        for bus in (first, second, again):
            await bus.close()

    asyncio.run(body())


def test_single_server_gets_one_replica(single_node: NatsCluster) -> None:
    async def body() -> None:
        bus = JetStreamBus(single_node.urls, Topology(2))
        await bus.start()
        assert (await bus.js.stream_info("GULOU")).config.num_replicas == 1
        assert (await bus.publish(readings(10, 2))).stored == 10
        await bus.close()

    asyncio.run(body())


def test_publish_survives_stream_leader_sigkill_without_loss_or_duplicate(cluster: NatsCluster) -> None:
    total, size = 6000, 200
    batches = [readings(size, 4, start) for start in range(0, total, size)]

    async def body() -> None:
        bus = JetStreamBus(cluster.urls, Topology(4), attempt_timeout_s=2.0)
        await bus.start()
        leader = await eventually(lambda: _leader(bus), "a stream leader")
        third = asyncio.Event()
        outcome = {"stored": 0, "duplicates": 0}

        async def publisher() -> None:
            for i, batch in enumerate(batches):
                result = await bus.publish(batch, timeout_s=60.0)
                outcome["stored"] += result.stored
                outcome["duplicates"] += result.duplicates
                if i == len(batches) // 3:
                    third.set()

        task = asyncio.create_task(publisher())
        await third.wait()
        await asyncio.to_thread(cluster.node(leader).kill)
        await task
        # A collector whose MQTT acks were lost publishes the same messages again: the stream drops them.
        again = await bus.publish(batches[0] + batches[-1], timeout_s=60.0)
        assert again.stored == 0 and again.duplicates == 2 * size

        new_leader = await eventually(lambda: _leader(bus), "a new stream leader")
        assert new_leader != leader
        assert (await bus.stats()).messages == total
        # The killed node comes back and catches up with the messages stored while it was gone.
        node = await asyncio.to_thread(cluster.restart, leader)
        await eventually(lambda: _replica_has(node, total), f"{leader}'s replica catching up")
        got = await drain(bus, "sink", total)
        counts = Counter(d.msg_id for d in got)
        assert set(counts) == {e.msg_id for b in batches for e in b}, "messages lost"
        assert max(counts.values()) == 1, f"duplicates: {[i for i, n in counts.items() if n > 1][:5]}"
        assert outcome["stored"] + outcome["duplicates"] == total
        await bus.close()

    asyncio.run(body())


def test_unacknowledged_messages_go_to_another_member_after_a_consumer_dies(cluster: NatsCluster) -> None:
    ack_wait = 2.0

    async def setup() -> None:
        bus = JetStreamBus(cluster.urls, Topology(2), ack_wait_s=ack_wait)
        await bus.start()
        await bus.publish(readings(50, 2))
        await bus.close()

    asyncio.run(setup())
    proc = agent(cluster, "take", "2", "sink", "20", str(ack_wait))
    try:
        taken = set(agent_line(proc)["taken"])
    finally:
        proc.kill()
        proc.wait(10)
    assert len(taken) == 20

    async def rest() -> None:
        bus = JetStreamBus(cluster.urls, Topology(2), ack_wait_s=ack_wait)
        await bus.start()
        got = await drain(bus, "sink", 50, timeout=60)
        counts = Counter(d.msg_id for d in got)
        assert len(counts) == 50 and max(counts.values()) == 1
        redelivered = {d.msg_id for d in got if d.attempt > 1}
        assert redelivered == taken, "the dead member's messages came back, and only those"
        await bus.close()

    asyncio.run(rest())


def test_lease_is_exclusive_and_taken_over_when_its_owner_dies(cluster: NatsCluster) -> None:
    ttl = 3.0
    proc = agent(cluster, "hold", "2", "rules.p1", "worker-a", str(ttl))
    try:
        held = agent_line(proc)
        assert held["acquired"] is True

        async def contend() -> None:
            bus = JetStreamBus(cluster.urls, Topology(2), lease_ttl_s=ttl)
            await bus.start()
            # While the owner renews, nobody else gets the lease, however long they try.
            for _ in range(3):
                assert await bus.leases.acquire("rules.p1", "worker-b") is None
                await asyncio.sleep(ttl / 2)
            assert (await bus.leases.holders("rules."))["rules.p1"] == "worker-a"
            await asyncio.to_thread(proc.kill)
            lease = await eventually(lambda: bus.leases.acquire("rules.p1", "worker-b"), "takeover", 6 * ttl)
            assert lease.revision > int(held["revision"])
            assert (await bus.leases.holders("rules."))["rules.p1"] == "worker-b"
            renewed = await bus.leases.renew(lease)
            assert renewed is not None and renewed.revision > lease.revision
            # A stale holder's renewal fails; a release frees the lease at once.
            assert await bus.leases.renew(lease) is None
            await bus.leases.release(renewed)
            taken = await bus.leases.acquire("rules.p1", "worker-c")
            assert taken is not None
            # Releasing a lease that is no longer ours (a worker stopping late) changes nothing and raises nothing.
            await bus.leases.release(renewed)
            assert (await bus.leases.holders("rules."))["rules.p1"] == "worker-c"
            await bus.leases.release(taken)
            await bus.leases.release(taken)  # already gone: the key has no revision at all now
            await bus.close()

        asyncio.run(contend())
    finally:
        proc.kill()
        proc.wait(10)


def test_snapshot_round_trip_and_replay_from_its_sequence(cluster: NatsCluster) -> None:
    async def body() -> None:
        bus = JetStreamBus(cluster.urls, Topology(2))
        await bus.start()
        mine = [e for e in readings(60, 2) if e.partition == 1]
        await bus.publish(readings(60, 2))
        await drain(bus, "sink", 60)

        first = await bus.reader("rules", 1, 0, "r1")
        seen = await eventually(lambda: first.fetch(10, 1.0), "first reads")
        assert [d.msg_id for d in seen] == [e.msg_id for e in mine[:len(seen)]]
        state = json.dumps({"count": len(seen)}).encode() * 500  # compressible, larger than one read
        snap = await bus.snapshots.save("rules.p1", seen[-1].seq, state, 0)
        await first.ack(seen)
        await first.fetch(5, 1.0)  # read past the snapshot, then "crash" without committing

        loaded = await bus.snapshots.load("rules.p1")
        assert loaded is not None and (loaded.seq, loaded.data) == (seen[-1].seq, state)
        with pytest.raises(SnapshotConflict):
            await bus.snapshots.save("rules.p1", seen[-1].seq + 1, b"stale", 0)

        second = await bus.reader("rules", 1, loaded.seq, "r2")
        rest: list[Delivery] = []
        while len(rest) < len(mine) - len(seen):
            rest.extend(await second.fetch(100, 1.0))
        assert [d.msg_id for d in rest] == [e.msg_id for e in mine[len(seen):]], "replay resumes in order"
        with pytest.raises(ReaderClosed):
            await first.fetch(5, 1.0)
        await second.ack(rest)
        await bus.snapshots.save("rules.p1", rest[-1].seq, b"done", snap.revision)
        # Partition 1 is done by every group: the stream keeps only partition 0 (its reader has not run).
        await eventually(lambda: _messages_equal(bus, 60 - len(mine)), "interest retention frees partition 1")
        await bus.close()

    asyncio.run(body())


async def _leader(bus: JetStreamBus) -> str | None:
    info = await bus.js.stream_info("GULOU")
    return info.cluster.leader if info.cluster else None


async def _replica_has(node: NatsNode, last_seq: int) -> bool:
    state = await asyncio.to_thread(node.stream_state, "GULOU")
    return state is not None and state.get("last_seq") == last_seq and state.get("messages") == last_seq


async def _messages_equal(bus: JetStreamBus, expected: int) -> bool:
    return (await bus.stats()).messages == expected


def test_full_stream_refuses_and_publish_says_so(cluster: NatsCluster) -> None:
    async def body() -> None:
        bus = JetStreamBus(cluster.urls, Topology(1), stream="SMALL", prefix="small", max_bytes=64 * 1024)
        await bus.start()
        with pytest.raises(BusFull):
            for start in range(0, 10_000, 500):
                await bus.publish(readings(500, 1, start), timeout_s=3.0)
        stats = await bus.stats()
        assert stats.max_bytes == 64 * 1024 and stats.bytes <= 64 * 1024
        await bus.close()

    asyncio.run(body())
