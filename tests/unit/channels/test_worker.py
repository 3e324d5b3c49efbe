"""The retrying, bounded channel worker (pure logic with a scripted channel)."""

from __future__ import annotations

import asyncio
from typing import Self

from gulou.channels.base import Channel, ChannelContext
from gulou.channels.outbox import MemoryOutbox
from gulou.channels.worker import ChannelWorker
from gulou.rules.alerts import AlertTransition
from gulou.settings import Settings


def renamed(t: AlertTransition, alert_id: str) -> AlertTransition:
    """The same notification under another alert id."""
    return AlertTransition(t.event, t.alert.model_copy(update={"alert_id": alert_id}))


class Flaky(Channel):
    """Fails the first ``failures`` sends."""

    name = "flaky"

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent: list[str] = []

    @classmethod
    def from_settings(cls, settings: Settings, context: ChannelContext) -> Self | None:
        return None

    async def send(self, transition: AlertTransition) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("down")
        self.sent.append(transition.alert.alert_id)


def test_worker_retries_then_keeps_then_redelivers(fired: AlertTransition) -> None:
    async def scenario() -> None:
        channel = Flaky(failures=5)
        outbox: MemoryOutbox[AlertTransition] = MemoryOutbox()
        worker = ChannelWorker(channel, outbox, attempts=3, backoff_s=0.001, redeliver_s=3600)
        task = asyncio.create_task(worker.run())
        worker.offer(fired)  # fails 3 times → kept
        worker.offer(renamed(fired, "second"))  # fails twice, then delivered
        await asyncio.wait_for(worker.queue.join(), 5)
        assert channel.sent == ["second"]
        assert worker.stats["kept"] == 1 and len(outbox.pending("flaky")) == 1
        assert await worker.redeliver_once() == 1
        assert channel.sent == ["second", fired.alert.alert_id] and outbox.pending("flaky") == []
        task.cancel()

    asyncio.run(scenario())


def test_worker_queue_overflow_goes_to_outbox(fired: AlertTransition) -> None:
    async def scenario() -> None:
        outbox: MemoryOutbox[AlertTransition] = MemoryOutbox()
        worker = ChannelWorker(Flaky(0), outbox, queue_size=2)
        for i in range(5):
            worker.offer(renamed(fired, str(i)))  # never blocks
        assert worker.queue.qsize() == 2 and worker.stats["overflow"] == 3
        assert [t.alert.alert_id for _, t in outbox.pending("flaky")] == ["2", "3", "4"]

    asyncio.run(scenario())


def test_backoff_is_jittered_and_capped() -> None:
    worker = ChannelWorker(Flaky(0), MemoryOutbox[AlertTransition](), backoff_s=1.0, backoff_cap_s=8.0)

    def wait(attempt: int) -> float:
        backoff = worker.new_backoff()
        for _ in range(attempt):
            backoff.next()
        return backoff.next()

    delays = {round(wait(2), 6) for _ in range(20)}
    assert len(delays) > 1 and all(2.0 <= d <= 4.0 for d in delays)
    assert all(4.0 <= wait(10) <= 8.0 for _ in range(20))


def test_the_delivery_listener_hears_first_deliveries_and_redeliveries_only(fired: AlertTransition) -> None:
    async def scenario() -> None:
        channel = Flaky(failures=2)
        worker: ChannelWorker[AlertTransition] = ChannelWorker(channel, MemoryOutbox(), attempts=2, backoff_s=0.001,
                                                               redeliver_s=3600)
        heard: list[tuple[str, str]] = []
        worker.on_delivered = lambda name, t: heard.append((name, t.alert.alert_id))
        task = asyncio.create_task(worker.run())
        worker.offer(fired)  # fails twice → kept, not heard
        worker.offer(renamed(fired, "second"))
        await asyncio.wait_for(worker.queue.join(), 5)
        assert heard == [("flaky", "second")]
        assert await worker.redeliver_once() == 1
        assert heard == [("flaky", "second"), ("flaky", fired.alert.alert_id)]
        task.cancel()

    asyncio.run(scenario())


def test_a_failing_listener_does_not_turn_a_delivery_into_a_retry(fired: AlertTransition) -> None:
    async def scenario() -> None:
        channel = Flaky(failures=0)
        worker: ChannelWorker[AlertTransition] = ChannelWorker(channel, MemoryOutbox(), attempts=3, backoff_s=0.001,
                                                               redeliver_s=3600)

        def broken(_name: str, _t: AlertTransition) -> None:
            raise RuntimeError("listener down")

        worker.on_delivered = broken
        task = asyncio.create_task(worker.run())
        worker.offer(fired)
        await asyncio.wait_for(worker.queue.join(), 5)
        assert channel.sent == [fired.alert.alert_id] and worker.stats["retries"] == 0
        task.cancel()

    asyncio.run(scenario())
