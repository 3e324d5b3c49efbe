"""Notification claims on the in-memory bus: claimed, delivered per channel, sent; takeovers of a gone worker."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

import pytest

from gulou.bus.base import Claim, Topology
from gulou.bus.lease import worker_key
from gulou.bus.memory import InProcessBus, MemoryClaims
from gulou.bus.notify import FULL_RECHECK, UNSENT_LIMIT, NotificationLedger
from gulou.channels.base import transition_id
from gulou.devices.registry import Registry
from gulou.rules.alerts import AlertTransition
from tests.unit.channels.helpers import firing

T = TypeVar("T")
GROUP = "rules"
CHANNELS = ("mqtt", "webhook")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one scenario on a fresh loop."""
    return asyncio.run(coro)


class Clock:
    """A monotonic clock the test moves by hand (lease expiry without waiting)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Worker:
    """One worker's ledger with its membership lease and a record of what it dispatched."""

    def __init__(self, bus: InProcessBus, name: str, clock: Clock) -> None:
        self.bus, self.name = bus, name
        self.sent: list[tuple[str, frozenset[str]]] = []
        self.ledger = NotificationLedger(bus, GROUP, name, CHANNELS, self.dispatch, recheck_s=1.0, clock=clock)

    def dispatch(self, transitions: Sequence[AlertTransition], skip: frozenset[str]) -> None:
        self.sent.extend((transition_id(t), skip) for t in transitions)

    async def join(self) -> None:
        """Take the membership lease, as the partition keeper does first."""
        assert await self.bus.leases.acquire(worker_key(GROUP, self.name), self.name) is not None


def transitions(registry: Registry, n: int) -> list[AlertTransition]:
    """``n`` distinct firing transitions (distinct alert ids)."""
    base = firing(registry)
    return [AlertTransition(base.event, base.alert.model_copy(update={"alert_id": f"{base.alert.alert_id}-{i}"}))
            for i in range(n)]


@pytest.fixture
def clock() -> Clock:
    """The hand-moved clock shared by the bus's leases and the ledgers."""
    return Clock()


def new_bus(clock: Clock) -> InProcessBus:
    """An in-memory bus whose leases expire on ``clock`` after 3 s."""
    return InProcessBus(Topology(2, groups=()), lease_ttl_s=3.0, clock=clock)


async def joined(clock: Clock) -> tuple[InProcessBus, Worker]:
    """A new bus with worker "a" a member of it."""
    bus = new_bus(clock)
    a = Worker(bus, "a", clock)
    await a.join()
    return bus, a


def test_memory_claims_are_compare_and_set_on_the_revision() -> None:
    async def body() -> None:
        claims = MemoryClaims()
        first = await claims.put("k", Claim("a"))
        assert first is not None and first.revision > 0 and not first.sent
        assert await claims.put("k", Claim("b")) is None, "a second create loses"
        done = await claims.put("k", Claim("a", frozenset({"mqtt"}), False, first.revision))
        assert done is not None and done.done == {"mqtt"}
        assert await claims.put("k", Claim("b", revision=first.revision)) is None, "a stale revision loses"
        assert await claims.get("k") == done and await claims.get("other") is None

    run(body())


def test_memory_claims_are_bounded() -> None:
    async def body() -> None:
        claims = MemoryClaims(limit=3)
        for i in range(5):
            await claims.put(str(i), Claim("a"))
        assert [await claims.get(str(i)) is not None for i in range(5)] == [False, False, True, True, True]

    run(body())


def test_a_claim_is_sent_once_every_channel_delivered_it(registry: Registry, clock: Clock) -> None:
    t = transitions(registry, 1)[0]
    key = transition_id(t)

    async def body() -> None:
        bus, a = await joined(clock)
        await a.ledger.admit(0, [t])
        assert a.sent == [(key, frozenset())]
        assert await bus.claims.get(key) == Claim("a", frozenset(), False, 1)
        a.ledger.delivered("mqtt", t)
        await a.ledger.flush()
        claim = await bus.claims.get(key)
        assert claim is not None and claim.done == {"mqtt"} and not claim.sent and key in a.ledger.mine
        a.ledger.delivered("webhook", t)
        await a.ledger.flush()
        claim = await bus.claims.get(key)
        assert claim is not None and claim.sent and not a.ledger.mine
        await a.ledger.admit(0, [t])  # a replay by the same worker
        assert len(a.sent) == 1 and a.ledger.suppressed == 1

    run(body())


def test_marks_arriving_together_are_one_write(registry: Registry, clock: Clock) -> None:
    t = transitions(registry, 1)[0]

    async def body() -> None:
        bus, a = await joined(clock)
        await a.ledger.admit(0, [t])
        a.ledger.delivered("mqtt", t)
        a.ledger.delivered("webhook", t)
        await a.ledger.flush()
        claim = await bus.claims.get(transition_id(t))
        assert claim is not None and claim.sent and claim.revision == 2

    run(body())


def test_a_live_workers_claim_is_watched_then_taken_over_when_it_is_gone(registry: Registry, clock: Clock) -> None:
    t = transitions(registry, 1)[0]
    key = transition_id(t)

    async def body() -> None:
        bus = new_bus(clock)
        a, b = Worker(bus, "a", clock), Worker(bus, "b", clock)
        await a.join()
        await b.join()
        await a.ledger.admit(0, [t])
        a.ledger.delivered("mqtt", t)
        await a.ledger.flush()  # the webhook is still in flight when ``a`` dies
        await b.ledger.admit(0, [t])
        assert b.sent == [] and key in b.ledger.watched, "a live worker's claim is left to it"
        await b.ledger.recheck()
        assert b.sent == [], "still alive"
        clock.now += 3.5  # a's membership lapses; b renews its own
        assert await bus.leases.holders(worker_key(GROUP, "")) == {}
        await b.join()
        await b.ledger.recheck()
        assert b.sent == [(key, frozenset({"mqtt"}))], "only the channel a never delivered"
        assert not b.ledger.watched and key in b.ledger.mine and b.ledger.taken_over == 1
        b.ledger.delivered("webhook", t)
        await b.ledger.flush()
        claim = await bus.claims.get(key)
        assert claim is not None and claim.owner == "b" and claim.sent
        # a's late delivery mark (it was only partitioned away, say) no longer changes the claim.
        a.ledger.delivered("webhook", t)
        await a.ledger.flush()
        assert await bus.claims.get(key) == claim and not a.ledger.mine

    run(body())


def test_a_gone_workers_claim_met_in_a_replay_is_taken_over_at_once(registry: Registry, clock: Clock) -> None:
    ts = transitions(registry, 3)

    async def body() -> None:
        bus, a = await joined(clock)
        await a.ledger.admit(0, ts)
        for t in ts[:2]:
            a.ledger.delivered("mqtt", t)
            a.ledger.delivered("webhook", t)
        await a.ledger.flush()
        clock.now += 3.5  # a is gone
        b = Worker(bus, "b", clock)
        await b.join()
        await b.ledger.admit(0, ts)
        assert b.sent == [(transition_id(ts[2]), frozenset())]
        assert b.ledger.suppressed == 2

    run(body())


def test_only_one_worker_takes_over_a_claim(registry: Registry, clock: Clock) -> None:
    t = transitions(registry, 1)[0]

    async def body() -> None:
        bus, a = await joined(clock)
        await a.ledger.admit(0, [t])
        clock.now += 3.5
        b, c = Worker(bus, "b", clock), Worker(bus, "c", clock)
        await b.join()
        await c.join()
        await asyncio.gather(b.ledger.admit(0, [t]), c.ledger.admit(1, [t]))
        assert len(b.sent) + len(c.sent) == 1
        loser = b if not b.sent else c
        assert transition_id(t) in loser.ledger.watched, "the winner is alive: the loser watches"

    run(body())


def test_the_snapshot_carries_what_is_unsent_to_the_next_owner(registry: Registry, clock: Clock) -> None:
    ts = transitions(registry, 3)

    async def body() -> None:
        bus, a = await joined(clock)
        await a.ledger.admit(0, ts[:2])
        await a.ledger.admit(1, ts[2:])
        a.ledger.delivered("mqtt", ts[0])
        a.ledger.delivered("webhook", ts[0])
        a.ledger.delivered("mqtt", ts[1])
        await a.ledger.flush()
        unsent = a.ledger.unsent(0)
        assert [transition_id(AlertTransition.from_json(u)) for u in unsent] == [transition_id(ts[1])]
        clock.now += 3.5
        b = Worker(bus, "b", clock)
        await b.join()
        await b.ledger.restore(0, unsent)  # the replay starts past the reading that made ts[1]
        assert b.sent == [(transition_id(ts[1]), frozenset({"mqtt"}))]

    run(body())


def test_the_unsent_list_is_bounded(registry: Registry, clock: Clock) -> None:
    base = transitions(registry, 1)[0]
    many = [AlertTransition(base.event, base.alert.model_copy(update={"alert_id": f"x{i}"}))
            for i in range(UNSENT_LIMIT + 5)]

    async def body() -> None:
        _bus, a = await joined(clock)
        await a.ledger.admit(0, many)
        unsent = a.ledger.unsent(0)
        assert len(unsent) == UNSENT_LIMIT and unsent[-1]["alert_id"] == f"x{UNSENT_LIMIT + 4}"

    run(body())


def test_the_tracked_claims_are_bounded(registry: Registry, clock: Clock) -> None:
    ts = transitions(registry, 5)

    async def body() -> None:
        bus = new_bus(clock)
        a = Worker(bus, "a", clock)
        a.ledger.limit = 3
        await a.join()
        await a.ledger.admit(0, ts)
        assert len(a.ledger.mine) == 3 and a.ledger.forgotten == 2
        # A forgotten claim is still marked when its deliveries come (read back first).
        a.ledger.delivered("mqtt", ts[0])
        a.ledger.delivered("webhook", ts[0])
        await a.ledger.flush()
        claim = await bus.claims.get(transition_id(ts[0]))
        assert claim is not None and claim.sent

    run(body())


def test_settle_waits_for_the_marks(registry: Registry, clock: Clock) -> None:
    t = transitions(registry, 1)[0]

    async def body() -> None:
        _bus, a = await joined(clock)
        await a.ledger.admit(0, [t])
        assert not await a.ledger.settle(0.0)

        async def deliver() -> None:
            a.ledger.delivered("mqtt", t)
            a.ledger.delivered("webhook", t)

        asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(deliver()))
        assert await a.ledger.settle(30.0)

    run(body())


def test_without_channels_a_claim_is_born_sent(registry: Registry, clock: Clock) -> None:
    t = transitions(registry, 1)[0]

    async def body() -> None:
        bus = new_bus(clock)
        sent: list[AlertTransition] = []
        ledger = NotificationLedger(bus, GROUP, "a", (), lambda ts, _skip: sent.extend(ts), clock=clock)
        await ledger.admit(0, [t, t])
        claim = await bus.claims.get(transition_id(t))
        assert claim is not None and claim.sent and sent == [t] and not ledger.mine

    run(body())


def test_a_claim_of_ours_not_in_hand_is_sent_not_lost(registry: Registry, clock: Clock) -> None:
    t = transitions(registry, 1)[0]
    key = transition_id(t)

    async def body() -> None:
        bus, a = await joined(clock)
        # Stored although the create seemed to fail (a timeout, then a retry that finds it there).
        assert await bus.claims.put(key, Claim("a", frozenset({"mqtt"}))) is not None
        await a.ledger.admit(0, [t])
        assert a.sent == [(key, frozenset({"mqtt"}))] and key in a.ledger.mine

    run(body())


def test_the_same_transition_twice_in_a_batch_is_sent_once(registry: Registry, clock: Clock) -> None:
    t = transitions(registry, 1)[0]

    async def body() -> None:
        _bus, a = await joined(clock)
        await a.ledger.admit(0, [t, t])
        assert a.sent == [(transition_id(t), frozenset())] and a.ledger.suppressed == 1

    run(body())


def test_watched_claims_of_live_workers_are_read_back_only_now_and_then(registry: Registry, clock: Clock,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    t = transitions(registry, 1)[0]
    key = transition_id(t)

    async def body() -> None:
        bus = new_bus(clock)
        a, b = Worker(bus, "a", clock), Worker(bus, "b", clock)
        await a.join()
        await b.join()
        await a.ledger.admit(0, [t])
        await b.ledger.admit(0, [t])
        a.ledger.delivered("mqtt", t)
        a.ledger.delivered("webhook", t)
        await a.ledger.flush()
        reads = 0
        get = bus.claims.get

        async def counted(k: str) -> Claim | None:
            nonlocal reads
            reads += 1
            return await get(k)

        monkeypatch.setattr(bus.claims, "get", counted)
        for _ in range(FULL_RECHECK - 1):
            await b.ledger.recheck()
        assert reads == 0 and key in b.ledger.watched, "a is alive: nothing to read"
        await b.ledger.recheck()
        assert reads == 1 and not b.ledger.watched and b.sent == [], "sent by a: forgotten"

    run(body())
