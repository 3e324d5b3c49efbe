"""The alerts dashboard's queries run against a real PostgreSQL database with the workflow schema."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from gulou.workflow import transitions
from gulou.workflow.grafana import ALERTS_SQL, STATUS_SQL, expand_time_filter
from gulou.workflow.store import WorkflowStore
from tests.pg import fresh_database
from tests.workflow_data import T0, minutes, payload

pytestmark = pytest.mark.integration


@pytest.fixture
def pg_store() -> Iterator[WorkflowStore]:
    with fresh_database() as url:
        store = WorkflowStore(url)
        yield store
        store.close()


def test_dashboard_shows_workflow_state_worst_first(pg_store: WorkflowStore) -> None:
    minor, _ = pg_store.record_engine_event(payload(device="pk-1", severity="informational"), T0)
    fire, _ = pg_store.record_engine_event(payload(device="bin-1", severity="critical", rule="waste-bin-fire",
                                                   domain="waste"), T0 + minutes(1))
    old, _ = pg_store.record_engine_event(payload("resolved", device="pk-9", first_seen=T0 - minutes(600),
                                                  resolved_at=T0 - minutes(590)), T0)
    pg_store.act(old.id, lambda a: transitions.close(a, "张三", None, T0))
    pg_store.act(fire.id, lambda a: transitions.acknowledge(a, "张三", "已到场", T0 + minutes(2)))
    pg_store.act(fire.id, lambda a: transitions.assign(a, "张三", "sanitation", "team", None, T0 + minutes(3)))
    sql = expand_time_filter(ALERTS_SQL, T0 - minutes(60), T0 + minutes(60))
    with pg_store.reader.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.text(sql))]
        counts = {(r.status, r.severity): r.alerts for r in conn.execute(sa.text(
            expand_time_filter(STATUS_SQL, T0 - minutes(60), T0 + minutes(60))))}
    assert [r["#"] for r in rows] == [fire.id, minor.id], "closed alerts outside the range are left out"
    top = rows[0]
    assert (top["status"], top["acked_by"], top["assignee"], top["severity"]) == (
        "assigned", "张三", "sanitation", "critical")
    assert counts == {("assigned", "critical"): 1, ("new", "informational"): 1}
    wide = expand_time_filter(ALERTS_SQL, T0 - minutes(700), T0 + minutes(60))
    with pg_store.reader.connect() as conn:
        assert old.id in [r[0] for r in conn.execute(sa.text(wide))]
