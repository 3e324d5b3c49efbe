"""``gulou alerts`` shows the workflow fields; ``ack``, ``assign``, ``close`` and ``show`` act from a terminal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from gulou.cli import cli
from gulou.rules.alert_store import AlertStore
from gulou.rules.alerts import AlertTransition
from gulou.workflow.store import WorkflowStore
from tests.workflow_data import T0, minutes, payload

pytestmark = pytest.mark.integration


def record(store_file: Path, body: dict[str, object]) -> None:
    """What the rules service does with a transition: the alert store and the workflow both record it."""
    alerts = AlertStore(store_file)
    alerts.record(AlertTransition.from_json(body))
    alerts.close()
    wf = WorkflowStore(f"sqlite:///{store_file}")
    wf.record_engine_event(body, T0)
    wf.close()


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_alerts_list_and_act_from_the_terminal(tmp_path: Path) -> None:
    store = tmp_path / "gulou.db"
    fire = payload(rule="waste-bin-fire-temperature", device="bin-001", severity="critical", domain="waste")
    record(store, fire)
    record(store, payload(device="pk-002", first_seen=T0 + minutes(1)))
    rows = json.loads(run("alerts", "--store", str(store), "--json"))
    assert [r["device_id"] for r in rows] == ["pk-002", "bin-001"]
    assert {"state", "message", "standard", "status", "acked_by", "assignee", "id"} <= set(rows[0])
    number = str(rows[1]["id"])
    assert "acknowledged" in run("alerts", "--store", str(store), "ack", number, "--note", "已到场", "--by", "张三")
    again = CliRunner().invoke(cli, ["alerts", "--store", str(store), "ack", number, "--by", "李四"])
    assert again.exit_code != 0 and "already acknowledged by 张三" in again.output
    run("alerts", "--store", str(store), "assign", number, "sanitation", "--team", "--by", "张三")
    refused = CliRunner().invoke(cli, ["alerts", "--store", str(store), "close", number, "--by", "张三"])
    assert refused.exit_code != 0 and "still firing" in refused.output
    run("alerts", "--store", str(store), "close", number, "--note", "误报，传感器受阳光直射", "--by", "张三")
    rows = {r["device_id"]: r for r in json.loads(run("alerts", "--store", str(store), "--json"))}
    fire_row = rows["bin-001"]
    assert (fire_row["status"], fire_row["acked_by"], fire_row["assignee"], fire_row["closed_by"]) == (
        "closed", "张三", "sanitation", "张三")
    assert [r["device_id"] for r in json.loads(run("alerts", "--store", str(store), "--open", "--json"))] == [
        "pk-002"]
    text = run("alerts", "--store", str(store), "show", number)
    assert "acknowledged" in text and "closed" in text and "误报" in text
    assert "#" + number in run("alerts", "--store", str(store))
