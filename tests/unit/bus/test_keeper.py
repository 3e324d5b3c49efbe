"""Partition ownership over in-memory leases: scale 1 -> 3 -> 2 workers, one dying; never two owners."""

from __future__ import annotations

import asyncio

from gulou.bus.base import Lease
from gulou.bus.keeper import PartitionKeeper
from gulou.bus.memory import MemoryLeases

PARTITIONS = 12
TTL = 9.0


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    """The worker side: which partitions it runs, and whether each loss was graceful."""

    def __init__(self) -> None:
        self.running: set[int] = set()
        self.losses: list[tuple[int, bool]] = []

    async def gained(self, partition: int, lease: Lease) -> None:
        assert partition not in self.running
        self.running.add(partition)

    async def lost(self, partition: int, graceful: bool) -> None:
        self.running.discard(partition)
        self.losses.append((partition, graceful))


def owners(workers: dict[str, tuple[PartitionKeeper, Recorder]]) -> dict[int, list[str]]:
    """Partition -> the workers that run it."""
    out: dict[int, list[str]] = {p: [] for p in range(PARTITIONS)}
    for name, (_keeper, rec) in workers.items():
        for p in rec.running:
            out[p].append(name)
    return out


def test_partitions_spread_move_and_survive_a_dead_worker() -> None:
    async def body() -> None:
        clock = Clock()
        leases = MemoryLeases(TTL, clock)
        workers: dict[str, tuple[PartitionKeeper, Recorder]] = {}

        def add(name: str) -> None:
            rec = Recorder()
            workers[name] = (PartitionKeeper(leases, "rules", PARTITIONS, name, rec, grace=2, clock=clock), rec)

        async def rounds(n: int, alive: list[str]) -> None:
            for _ in range(n):
                for name in alive:
                    await workers[name][0].tick()
                    # Never two owners, whatever the order of ticks.
                    assert all(len(o) <= 1 for o in owners(workers).values())
                clock.now += TTL / 3

        add("w-a")
        await rounds(1, ["w-a"])
        assert workers["w-a"][1].running == set(range(PARTITIONS))

        add("w-b")
        add("w-c")
        await rounds(4, ["w-a", "w-b", "w-c"])
        spread = owners(workers)
        assert all(len(o) == 1 for o in spread.values()), spread
        assert all(workers[w][1].running for w in ("w-a", "w-b", "w-c"))
        assert all(graceful for _p, graceful in workers["w-a"][1].losses), "hand-over commits first"

        # w-c dies: it stops renewing. Its partitions come back once its leases lapse and the grace passes.
        dead = set(workers["w-c"][1].running)
        workers["w-c"][1].running.clear()  # the process is gone, and so is its work
        await rounds(2, ["w-a", "w-b"])
        assert not any(owners(workers)[p] for p in dead), "taken over while the dead worker's lease was valid"
        await rounds(4, ["w-a", "w-b"])
        taken = owners(workers)
        assert all(taken[p] for p in dead), taken
        assert {p for p, o in taken.items() if o and o[0] in ("w-a", "w-b")} == set(range(PARTITIONS))

        # A graceful stop hands everything back at once.
        await workers["w-b"][0].shutdown()
        await rounds(1, ["w-a"])
        assert workers["w-a"][1].running == set(range(PARTITIONS))

    asyncio.run(body())


def test_a_lease_lost_to_expiry_is_given_up_without_committing() -> None:
    async def body() -> None:
        clock = Clock()
        leases = MemoryLeases(TTL, clock)
        rec = Recorder()
        keeper = PartitionKeeper(leases, "rules", 2, "w-a", rec, clock=clock)
        await keeper.tick()
        assert rec.running == {0, 1} and keeper.lease(0) is not None
        clock.now += TTL + 1  # the worker stalled past its TTL
        assert keeper.lease(0) is None, "an expired lease must not be used to commit"
        await keeper.tick()
        assert (0, False) in rec.losses and (1, False) in rec.losses

    asyncio.run(body())


class CommitChecker(Recorder):
    """A worker that commits on a graceful loss, as the rules worker does: the lease must still be held then."""

    def __init__(self) -> None:
        super().__init__()
        self.keeper: PartitionKeeper | None = None
        self.committed: list[int] = []

    async def lost(self, partition: int, graceful: bool) -> None:
        assert self.keeper is not None
        if graceful and self.keeper.lease(partition) is not None:
            self.committed.append(partition)
        await super().lost(partition, graceful)


def test_a_partition_handed_to_a_joining_worker_is_committed_before_its_lease_goes() -> None:
    async def body() -> None:
        clock = Clock()
        leases = MemoryLeases(TTL, clock)
        first = CommitChecker()
        a = PartitionKeeper(leases, "rules", PARTITIONS, "w-a", first, grace=2, clock=clock)
        first.keeper = a
        await a.tick()
        assert first.running == set(range(PARTITIONS))
        b = PartitionKeeper(leases, "rules", PARTITIONS, "w-b", Recorder(), grace=2, clock=clock)
        for _ in range(4):
            await b.tick()
            await a.tick()
            clock.now += TTL / 3
        handed = {p for p, graceful in first.losses if graceful}
        assert handed, "the joining worker got partitions"
        assert set(first.committed) == handed, "every partition handed over was committed first"

    asyncio.run(body())


def test_a_dropped_partition_is_released_and_taken_again() -> None:
    async def body() -> None:
        clock = Clock()
        leases = MemoryLeases(TTL, clock)
        rec = Recorder()
        keeper = PartitionKeeper(leases, "rules", 2, "w-a", rec, grace=2, clock=clock)
        await keeper.tick()
        assert rec.running == {0, 1}
        # The partition's reader ended by itself (e.g. the bus failed): the worker stopped its work.
        rec.running.discard(0)
        await keeper.drop(0)
        assert keeper.lease(0) is None and "rules.p0" not in await leases.holders("rules.p")
        for _ in range(3):  # after the grace the free partition is taken again
            clock.now += TTL / 3
            await keeper.tick()
        assert rec.running == {0, 1} and keeper.lease(0) is not None

    asyncio.run(body())
