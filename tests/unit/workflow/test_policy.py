"""Routing, escalation due times and the duty roster from the shipped and from custom policy files."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from gulou.workflow.policy import PolicyError, load_policy
from tests.workflow_data import T0, minutes, record


def test_shipped_policy_loads_and_routes_by_severity_domain_and_rule() -> None:
    policy = load_policy()
    urgent = policy.routing.route(record(severity="critical", domain="waste", rule_id="waste-bin-fire-temperature"))
    assert set(urgent.channels) >= {"dingtalk", "wecom"} and urgent.mention and urgent.dispatch
    minor = policy.routing.route(record(severity="informational"))
    assert minor.channels == ("wecom",) and not minor.mention and not minor.dispatch
    assert policy.routing.limit("dingtalk").per_minute == 20
    assert policy.routing.limit("unknown-robot").per_minute == 20


def test_escalation_due_after_each_level_and_only_upwards() -> None:
    esc = load_policy().escalations
    critical = record(severity="critical")
    assert esc.due(critical, T0 + minutes(14)) is None
    level, step = esc.due(critical, T0 + minutes(15)) or (0, None)
    assert level == 1 and step is not None and step.roster_level == 1
    assert (esc.due(critical, T0 + minutes(61)) or (0,))[0] == 3
    assert esc.due(critical.model_copy(update={"escalation_level": 3}), T0 + minutes(90)) is None
    assert esc.due(record(severity="low"), T0 + minutes(600)) is None


@pytest.mark.parametrize(("utc", "who"), [
    (datetime(2026, 5, 6, 0, 30, tzinfo=UTC), "duty-day"),     # 08:30 Beijing
    (datetime(2026, 5, 6, 9, 29, tzinfo=UTC), "duty-day"),     # 17:29
    (datetime(2026, 5, 6, 9, 30, tzinfo=UTC), "duty-night"),   # 17:30
    (datetime(2026, 5, 6, 18, 0, tzinfo=UTC), "duty-night"),   # 02:00 next day
])
def test_duty_shifts_in_beijing_time_including_overnight(utc: datetime, who: str) -> None:
    person = load_policy().roster.on_duty(1, utc)
    assert person is not None and person.id == who


def test_weekday_shift_and_fallback(tmp_path: Path) -> None:
    (tmp_path / "roster.yaml").write_text(
        "people: [{id: a, name: A}, {id: b, name: B}]\n"
        "duty:\n- {level: 1, title: x, fallback: b, shifts: [{person: a, days: [sat, sun], start: '00:00', "
        "end: '00:00'}]}\n", encoding="utf-8")
    (tmp_path / "escalation.yaml").write_text("policies: []\n", encoding="utf-8")
    roster = load_policy(tmp_path).roster
    saturday, monday = datetime(2026, 5, 9, 4, tzinfo=UTC), datetime(2026, 5, 11, 4, tzinfo=UTC)
    assert [roster.on_duty(1, d).id for d in (saturday, monday)] == ["a", "b"]  # type: ignore[union-attr]


def test_bad_files_name_the_file_and_the_problem(tmp_path: Path) -> None:
    (tmp_path / "routes.yaml").write_text("routes: [{name: x, match: {severity: [urgent]}}]\n", encoding="utf-8")
    with pytest.raises(PolicyError, match=r"routes.yaml.*unknown severity"):
        load_policy(tmp_path)
    (tmp_path / "routes.yaml").unlink()
    (tmp_path / "escalation.yaml").write_text(
        "policies: [{name: x, severity: [critical], levels: [{after_min: 5, roster_level: 9}]}]\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="roster level 9"):
        load_policy(tmp_path)
