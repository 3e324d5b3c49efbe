"""Pure send planning: per-minute limit, urgent first with a reserve, grouping, storms, nothing dropped."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from gulou.workflow.digest import is_urgent, next_slot, plan, sent_in_window, wake_at
from gulou.workflow.policy import ChannelLimit
from tests.workflow_data import T0, item, minutes

LIMIT = ChannelLimit(per_minute=20, group_wait_s=10, storm_threshold=5, urgent_reserve=2)
LATER = T0 + timedelta(seconds=11)


def covered(batches: list[Any]) -> list[int]:
    return sorted(i.id for b in batches for i in b.items)


def test_minor_alerts_wait_for_company_then_go_as_one_digest() -> None:
    items = [item(1), item(2, rule="waste-bin-dispatch"), item(3, rule="air-aqi-over-100")]
    assert plan(items, [], T0 + timedelta(seconds=5), LIMIT) == []
    batches = plan(items, [], LATER, LIMIT)
    assert [b.kind for b in batches] == ["digest"] and covered(batches) == [1, 2, 3]


def test_critical_goes_at_once_and_apart_from_minor_ones() -> None:
    items = [item(1), item(2, severity="critical", rule="waste-bin-fire-temperature")]
    now_batches = plan(items, [], T0, LIMIT)
    assert [(b.kind, b.urgent, covered([b])) for b in now_batches] == [("single", True, [2])]
    later = plan(items, [], LATER, LIMIT)
    assert [b.urgent for b in later] == [True, False]


def test_a_storm_of_one_rule_is_one_message_beside_the_rest() -> None:
    items = [item(n) for n in range(1, 31)] + [item(31, rule="waste-bin-dispatch")]
    batches = plan(items, [], LATER, LIMIT)
    assert [(b.kind, len(b.items)) for b in batches] == [("storm", 30), ("single", 1)]


def test_full_minute_sends_nothing_and_keeps_everything() -> None:
    sent = [T0 + timedelta(seconds=s) for s in range(20)]
    items = [item(1, severity="critical")]
    assert plan(items, sent, T0 + timedelta(seconds=30), LIMIT) == []
    assert next_slot(sent, T0 + timedelta(seconds=30), 20) == T0 + timedelta(seconds=60)
    assert covered(plan(items, sent, T0 + timedelta(seconds=60), LIMIT)) == [1]


def test_minor_messages_leave_the_reserve_for_urgent_ones() -> None:
    sent = [T0 + timedelta(seconds=s) for s in range(18)]
    assert plan([item(1)], sent, LATER + timedelta(seconds=10), LIMIT) == []
    urgent = plan([item(1), item(2, severity="high")], sent, LATER + timedelta(seconds=10), LIMIT)
    assert [covered([b]) for b in urgent] == [[2]]


def test_more_groups_than_slots_fold_into_the_last_message() -> None:
    sent = [T0 + timedelta(seconds=s) for s in range(16)]
    rules = ["a", "b", "c", "d"]
    items = [item(n * 10 + k, rule=r) for n, r in enumerate(rules) for k in range(5)]
    batches = plan(items, sent, LATER + timedelta(seconds=10), LIMIT)
    assert len(batches) == 2 and covered(batches) == sorted(i.id for i in items)
    assert batches[-1].kind == "digest"


def test_never_more_than_the_limit_in_any_minute_over_a_flood() -> None:
    sent: list[Any] = []
    waiting = [item(n, severity=("critical" if n % 50 == 0 else "low"), rule=f"r{n % 37}",
                    created=T0 + timedelta(seconds=n)) for n in range(1, 400)]
    now = T0
    delivered: set[int] = set()
    for _ in range(600):
        now += timedelta(seconds=1)
        arrived = [i for i in waiting if i.created_at <= now and i.id not in delivered]
        for batch in plan(arrived, sent, now, LIMIT):
            sent.append(now)
            delivered.update(i.id for i in batch.items)
        assert sent_in_window(sent, now) <= 20
    assert delivered == {i.id for i in waiting}


def test_retry_time_is_respected_and_wake_time_follows_it() -> None:
    waiting = item(1, severity="critical").model_copy(update={"next_attempt_at": T0 + minutes(1)})
    assert plan([waiting], [], T0, LIMIT) == []
    assert wake_at([waiting], [], T0, LIMIT) == T0 + minutes(1)
    assert wake_at([item(2)], [], T0, LIMIT) == T0 + timedelta(seconds=10)


def test_what_counts_as_urgent() -> None:
    assert is_urgent(item(1, severity="critical")) and is_urgent(item(1, severity="high", event="renotify"))
    assert not is_urgent(item(1, severity="critical", event="resolved"))
    assert is_urgent(item(1, severity="low", event="escalated")) and not is_urgent(item(1, severity="medium"))
