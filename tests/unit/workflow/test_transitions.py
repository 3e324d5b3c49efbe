"""Pure alert transitions: who may do what, and what the refusal says."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gulou.workflow import transitions as tr
from gulou.workflow.model import Conflict, WorkflowError
from tests.workflow_data import T0, minutes, payload, record


def test_acknowledge_records_who_when_and_note_and_bumps_version() -> None:
    alert = tr.apply(record(), tr.acknowledge(record(), "张三", "到场查看", T0))
    assert (alert.status, alert.acked_by, alert.acked_at, alert.ack_note, alert.version) == (
        "acknowledged", "张三", T0, "到场查看", 2)


def test_second_acknowledgement_is_a_conflict_naming_the_first() -> None:
    acked = tr.apply(record(), tr.acknowledge(record(), "张三", None, T0))
    with pytest.raises(Conflict, match=r"already acknowledged by 张三 at 2026-05-06T09:00:00\+08:00"):
        tr.acknowledge(acked, "李四", None, T0 + minutes(1))


def test_assign_to_a_team_then_hand_over() -> None:
    first = tr.apply(record(), tr.assign(record(), "张三", "sanitation", "team", None, T0))
    assert (first.status, first.assignee, first.assignee_kind, first.assigned_by) == (
        "assigned", "sanitation", "team", "张三")
    change = tr.assign(first, "李四", "王五", "person", "交接", T0 + minutes(5))
    assert change.detail == {"assignee": "王五", "kind": "person", "previous": "sanitation"}
    with pytest.raises(Conflict, match="already assigned to sanitation"):
        tr.assign(first, "李四", "sanitation", "team", None, T0)


def test_close_needs_resolved_or_a_note() -> None:
    with pytest.raises(WorkflowError, match="still firing"):
        tr.close(record(), "张三", "  ", T0)
    closed = tr.apply(record(), tr.close(record(), "张三", "设备误报，已派人校准", T0))
    assert closed.status == "closed" and closed.close_note == "设备误报，已派人校准"
    resolved = record(condition="resolved")
    assert tr.apply(resolved, tr.close(resolved, "张三", None, T0)).status == "closed"


def test_nothing_changes_a_closed_alert() -> None:
    closed = tr.apply(record(condition="resolved"), tr.close(record(condition="resolved"), "张三", None, T0))
    actions: list[Callable[[], object]] = [lambda: tr.acknowledge(closed, "李四", None, T0),
                                           lambda: tr.close(closed, "李四", "x", T0),
                                           lambda: tr.assign(closed, "李四", "王五", "person", None, T0)]
    for action in actions:
        with pytest.raises(Conflict, match="closed by 张三"):
            action()


def test_escalation_only_for_unhandled_firing_alerts_and_only_upwards() -> None:
    change = tr.escalate(record(), 1, T0, ["duty-day"])
    assert change is not None and not change.bumps_version
    escalated = tr.apply(record(), change)
    assert (escalated.status, escalated.escalation_level, escalated.version) == ("escalated", 1, 1)
    assert tr.escalate(escalated, 1, T0, []) is None
    assert tr.escalate(escalated, 2, T0, []) is not None
    acked = tr.apply(escalated, tr.acknowledge(escalated, "张三", None, T0))
    assert acked.status == "acknowledged"
    assert tr.escalate(acked, 3, T0, []) is None
    assert tr.escalate(record(condition="resolved"), 1, T0, []) is None


def test_engine_change_touches_the_condition_not_the_handling() -> None:
    acked = tr.apply(record(), tr.acknowledge(record(), "张三", None, T0))
    resolved_at = T0 + minutes(42)
    change = tr.engine_change(payload("resolved", resolved_at=resolved_at, value=0.85), resolved_at)
    after = tr.apply(acked, change)
    assert (after.condition, after.status, after.acked_by, after.resolved_at, after.value) == (
        "resolved", "acknowledged", "张三", resolved_at, 0.85)
    assert change.action == "resolved" and after.version == acked.version


def test_work_order_done_closes_with_its_note() -> None:
    change = tr.work_order_change(record(), "WO-1", "done", "已清运", T0, "https://img.example/1.jpg")
    after = tr.apply(record(), change)
    assert (after.status, after.closed_by, after.close_note, after.work_order_status) == (
        "closed", "workorder:WO-1", "已清运", "done")
    assert change.detail["photo_url"] == "https://img.example/1.jpg"
    on_site = tr.apply(record(), tr.work_order_change(record(), "WO-1", "on_site", None, T0))
    assert on_site.status == "new" and on_site.work_order_status == "on_site"
