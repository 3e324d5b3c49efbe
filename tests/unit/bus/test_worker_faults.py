"""A rules worker whose partition cannot be opened at first keeps trying, and still evaluates every reading."""

from __future__ import annotations

import asyncio

from gulou.bus.base import BusUnavailable, Consumer, Topology
from gulou.bus.codec import envelope
from gulou.bus.memory import InProcessBus
from gulou.bus.partition import Partitioner
from gulou.bus.rules_worker import BusRulesWorker
from gulou.devices.registry import Registry
from gulou.rules.model import load_rules
from tests.unit.bus.test_inprocess_pipeline import bins
from tests.waiting import wait_for_async


class FlakyReaders(InProcessBus):
    """The in-process bus, whose partition readers fail to open the first ``failures`` times (a node timing out)."""

    def __init__(self, failures: int) -> None:
        super().__init__(Topology(2, groups=()), lease_ttl_s=0.6)
        self.failures = failures

    async def reader(self, group: str, partition: int, after_seq: int, token: str) -> Consumer:
        """Refuse while failures are left, then open as usual."""
        if self.failures > 0:
            self.failures -= 1
            raise BusUnavailable(f"opening partition {partition} of {group}: TimeoutError()")
        return await super().reader(group, partition, after_seq, token)


def test_a_partition_whose_reader_fails_to_open_is_still_read(registry: Registry) -> None:
    points = bins(registry, 6)
    parts = Partitioner(registry, 2)

    async def body() -> int:
        bus = FlakyReaders(failures=3)
        worker = BusRulesWorker(bus, registry, load_rules(None), lambda *_: None, "w-a", commit_s=0.05)
        stop = asyncio.Event()
        running = asyncio.create_task(worker.run(stop))
        await bus.publish([envelope(p, parts.for_device(p.device_id)) for p in points])
        await wait_for_async(lambda: worker.evaluated >= len(points), 30, "every reading evaluated")
        stop.set()
        await running
        assert bus.failures == 0, "the opening failed and was retried"
        return worker.evaluated

    assert asyncio.run(body()) == len(points)
