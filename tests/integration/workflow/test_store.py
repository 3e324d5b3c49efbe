"""The workflow store on SQLite and PostgreSQL: migrations, engine events, actions, concurrency, queues."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from gulou.workflow import db, transitions
from gulou.workflow.model import Conflict, NotFound, SilenceScope, WorkflowError
from gulou.workflow.store import AlertFilter, WorkflowStore
from tests.workflow_data import T0, minutes, payload

pytestmark = pytest.mark.integration


def test_migrations_reach_head_and_are_idempotent(store: WorkflowStore) -> None:
    assert db.current_revision(store.engine) == "0001"
    db.migrate(store.engine)
    tables = set(sa.inspect(store.engine).get_table_names())
    assert {"workflow_alerts", "workflow_history", "workflow_silences", "workflow_outbox", "workflow_messages",
            "workflow_work_orders", db.VERSION_TABLE} <= tables


def test_engine_events_build_one_alert_with_its_history(store: WorkflowStore) -> None:
    first, created = store.record_engine_event(payload(), T0)
    again, created_again = store.record_engine_event(payload("renotify"), T0 + minutes(60))
    ended, _ = store.record_engine_event(payload("resolved", resolved_at=T0 + minutes(90), value=0.8),
                                         T0 + minutes(90))
    assert created and not created_again and first.id == again.id == ended.id
    assert (ended.condition, ended.status, ended.value, ended.resolved_at) == (
        "resolved", "new", 0.8, T0 + minutes(90))
    assert ended.first_seen == T0 and ended.first_seen.utcoffset() == timedelta(0)
    assert [h.action for h in store.history(first.id)] == ["fired", "still_firing", "resolved"]
    assert store.get(first.alert_id).id == first.id


def test_actions_are_recorded_with_the_operator(store: WorkflowStore) -> None:
    alert, _ = store.record_engine_event(payload(severity="critical"), T0)
    store.act(alert.id, lambda a: transitions.acknowledge(a, "张三", "在路上", T0 + minutes(3)))
    store.act(alert.id, lambda a: transitions.assign(a, "张三", "sanitation", "team", None, T0 + minutes(4)))
    with pytest.raises(WorkflowError, match="still firing"):
        store.act(alert.id, lambda a: transitions.close(a, "李四", None, T0 + minutes(5)))
    closed = store.act(alert.id, lambda a: transitions.close(a, "李四", "误报", T0 + minutes(6)))
    assert (closed.status, closed.version, closed.closed_by) == ("closed", 4, "李四")
    lines = [(h.action, h.actor, h.note) for h in store.history(alert.id)]
    assert lines[1:] == [("acknowledged", "张三", "在路上"), ("assigned", "张三", None), ("closed", "李四", "误报")]


def test_a_stale_version_is_a_conflict(store: WorkflowStore) -> None:
    alert, _ = store.record_engine_event(payload(), T0)
    store.act(alert.id, lambda a: transitions.assign(a, "张三", "王五", "person", None, T0), expected_version=1)
    with pytest.raises(Conflict, match=r"changed since you read it \(version 1, now 2, last by 张三"):
        store.act(alert.id, lambda a: transitions.acknowledge(a, "李四", None, T0), expected_version=1)
    with pytest.raises(NotFound):
        store.act(999, lambda a: transitions.acknowledge(a, "李四", None, T0))


def test_two_operators_ack_at_once_one_wins_one_gets_a_conflict(store: WorkflowStore) -> None:
    alert, _ = store.record_engine_event(payload(severity="critical"), T0)
    barrier = threading.Barrier(2)
    results: dict[str, str] = {}

    def ack(name: str) -> None:
        barrier.wait()
        try:
            store.act(alert.id, lambda a: transitions.acknowledge(a, name, None, T0 + minutes(1)))
            results[name] = "won"
        except Conflict as exc:
            results[name] = str(exc)

    threads = [threading.Thread(target=ack, args=(n,)) for n in ("张三", "李四")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == ["张三", "李四"]
    winners = [n for n, r in results.items() if r == "won"]
    assert len(winners) == 1, results
    loser = next(r for n, r in results.items() if n not in winners)
    assert f"already acknowledged by {winners[0]}" in loser or "changed by someone else" in loser
    final = store.get(alert.id)
    assert final.acked_by == winners[0] and final.version == 2


def test_filters(store: WorkflowStore) -> None:
    store.record_engine_event(payload(device="a", severity="critical", domain="waste", rule="waste-bin-fire"), T0)
    store.record_engine_event(payload(device="b", street="鼓西街道", first_seen=T0 + minutes(1)), T0 + minutes(1))
    store.record_engine_event(payload("resolved", device="c", resolved_at=T0 + minutes(5)), T0 + minutes(5))
    assert [a.device_id for a in store.alerts()] == ["b", "c", "a"]
    assert [a.device_id for a in store.alerts(AlertFilter(severity=("critical",)))] == ["a"]
    assert [a.device_id for a in store.alerts(AlertFilter(street="鼓西街道"))] == ["b"]
    assert [a.device_id for a in store.alerts(AlertFilter(condition="resolved"))] == ["c"]
    assert len(store.alerts(AlertFilter(since=T0 + minutes(1)))) == 2
    assert len(store.alerts(limit=1, offset=1)) == 1


def test_silences_crud_with_history(store: WorkflowStore) -> None:
    silence = store.silences.create(SilenceScope(device_id="pk-001"), T0, T0 + minutes(60), "检修", "张三", T0)
    assert [s.id for s in store.silences.find(active_at=T0 + minutes(30))] == [silence.id]
    assert store.silences.find(active_at=T0 + minutes(61)) == []
    longer = store.silences.update(silence.id, "李四", T0 + minutes(10), ends_at=T0 + minutes(120))
    assert longer.ends_at == T0 + minutes(120) and longer.updated_by == "李四"
    with pytest.raises(WorkflowError, match="end after it starts"):
        store.silences.update(silence.id, "李四", T0, ends_at=T0 - minutes(1))
    cancelled = store.silences.cancel(silence.id, "王五", T0 + minutes(20))
    assert cancelled.cancelled_by == "王五" and store.silences.find() == []
    assert [s.id for s in store.silences.find(include_cancelled=True)] == [silence.id]
    with store.reader.connect() as conn:
        actions = [r.action for r in conn.execute(sa.select(db.history).where(db.history.c.silence == silence.id))]
    assert actions == ["silence_created", "silence_updated", "silence_cancelled"]


def test_outbox_keeps_items_until_sent_and_remembers_sends(store: WorkflowStore) -> None:
    alert, _ = store.record_engine_event(payload(), T0)
    for n in range(3):
        store.outbox.enqueue(["dingtalk"], alert.id, "firing", "low", "parking-tight", {"n": n}, T0)
    store.outbox.enqueue(["wecom"], alert.id, "firing", "low", "parking-tight", {}, T0)
    ids = [w.id for w in store.outbox.waiting("dingtalk")]
    assert store.outbox.counts() == {"dingtalk": 3, "wecom": 1}
    store.outbox.deferred(ids[:1], T0 + minutes(1))
    waiting = store.outbox.waiting("dingtalk")
    assert [w.attempts for w in waiting] == [1, 0, 0] and waiting[0].next_attempt_at == T0 + minutes(1)
    store.outbox.sent("dingtalk", store.outbox.waiting("dingtalk"), "digest", "[告警汇总] 3条", T0 + minutes(2))
    assert [h.action for h in store.history(alert.id)] == ["fired", "notified"]
    assert store.outbox.waiting("dingtalk") == [] and store.outbox.channels() == ["wecom"]
    assert store.outbox.sent_since("dingtalk", T0 + minutes(1)) == [T0 + minutes(2)]


def test_work_order_lifecycle_closes_the_alert(store: WorkflowStore) -> None:
    alert, _ = store.record_engine_event(payload(rule="waste-bin-overflow", domain="waste"), T0)
    order = store.work_orders.create(alert.id, T0)
    assert [o.id for o in store.work_orders.due(T0)] == [order.id]
    store.work_orders.failed_attempt(order.id, "HTTP 502", T0 + minutes(1), T0)
    assert store.work_orders.due(T0) == [] and [o.id for o in store.work_orders.due(T0 + minutes(1))] == [order.id]
    store.work_orders.delivered(order.id, T0 + minutes(1))
    store.work_order_progress(order.id, "on_site", None, None, T0 + minutes(20))
    done = store.work_order_progress(order.id, "done", "已清运", "https://img.example/wo.jpg", T0 + minutes(40))
    assert (done.status, done.work_order_status, done.close_note) == ("closed", "done", "已清运")
    assert store.work_orders.get(order.id).photo_url == "https://img.example/wo.jpg"
    actions = [h.action for h in store.history(alert.id)]
    assert actions == ["fired", "work_order_created", "work_order_on_site", "work_order_done"]
