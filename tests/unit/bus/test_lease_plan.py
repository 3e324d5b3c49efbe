"""Who owns which partition: rendezvous hashing, grace for strays, hand-over when workers join."""

from __future__ import annotations

from gulou.bus.lease import (
    parse_partition_key,
    partition_key,
    plan,
    preferred_owner,
    renew_due,
    worker_key,
)

WORKERS = ["w-a", "w-b", "w-c"]


def test_keys_round_trip() -> None:
    assert partition_key("rules", 12) == "rules.p12"
    assert parse_partition_key("rules", "rules.p12") == 12
    assert parse_partition_key("rules", "rules.px") is None
    assert parse_partition_key("rules", "sink.p1") is None
    assert worker_key("rules", "host-1") == "worker.rules.host-1"


def test_preferred_owner_is_deterministic_and_order_free() -> None:
    assert preferred_owner(3, []) is None
    owners = [preferred_owner(p, WORKERS) for p in range(64)]
    assert owners == [preferred_owner(p, list(reversed(WORKERS))) for p in range(64)]
    assert set(owners) == set(WORKERS)  # 64 partitions reach every worker


def test_a_joining_worker_takes_only_partitions_it_wins() -> None:
    before = {p: preferred_owner(p, WORKERS[:2]) for p in range(64)}
    after = {p: preferred_owner(p, WORKERS) for p in range(64)}
    moved = {p for p in range(64) if before[p] != after[p]}
    assert moved and all(after[p] == "w-c" for p in moved)


def test_a_lone_worker_takes_everything_at_once() -> None:
    todo = plan(8, "w-a", ["w-a"], {}, {})
    assert todo.acquire == tuple(range(8)) and todo.release == ()


def test_workers_split_the_partitions_without_overlap() -> None:
    taken = {w: set(plan(32, w, WORKERS, {}, {}).acquire) for w in WORKERS}
    assert set().union(*taken.values()) == set(range(32))
    assert sum(len(t) for t in taken.values()) == 32


def test_strays_wait_for_their_preferred_owner_for_the_grace() -> None:
    stray = next(p for p in range(32) if preferred_owner(p, WORKERS) != "w-a")
    assert stray not in plan(32, "w-a", WORKERS, {}, {stray: 1}, grace=2).acquire
    assert stray in plan(32, "w-a", WORKERS, {}, {stray: 2}, grace=2).acquire


def test_held_partitions_are_left_alone_or_handed_to_their_preferred_owner() -> None:
    holders = dict.fromkeys(range(16), "w-a")
    todo = plan(16, "w-a", WORKERS, holders, {})
    assert todo.acquire == ()
    assert set(todo.release) == {p for p in range(16) if preferred_owner(p, WORKERS) != "w-a"}
    # Another worker never takes what w-a holds, even its own preferred partitions.
    assert plan(16, "w-b", WORKERS, holders, {}).acquire == ()


def test_renewal_falls_due_after_a_third_of_the_ttl() -> None:
    assert not renew_due(100.0, 9.0, 102.9)
    assert renew_due(100.0, 9.0, 103.0)
