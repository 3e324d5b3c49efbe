"""The generated dashboards: committed JSON is current, valid for the SDK's schema, consistent datasource."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from gulou.cli import cli
from gulou.dashboards.common import DATASOURCE_TYPE, DATASOURCE_UID, GAZETTEER_PATH, InfluxQLQuery
from gulou.dashboards.generate import DEFAULT_GAZETTEER, DEFAULT_OUT, build_all, builders, render, stale
from gulou.dashboards.push import InfluxTarget, datasource_model
from gulou.dashboards.workflow import WORKFLOW_DATASOURCE_TYPE, WORKFLOW_DATASOURCE_UID, SqlQuery
from gulou.devices.registry import Registry

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def boards(registry: Registry) -> dict[str, dict[str, Any]]:
    return build_all(registry)


def test_committed_json_is_current(registry: Registry) -> None:
    files = render(registry, ROOT / DEFAULT_OUT, ROOT / DEFAULT_GAZETTEER)
    outdated = stale(files)
    assert not outdated, f"stale generated files (run `gulou dashboards generate`): {outdated}"
    committed = {p.name for p in (ROOT / DEFAULT_OUT).glob("*.json")}
    assert committed == set(builders()), "dashboards/ holds JSON the generator does not produce"


def test_generation_is_deterministic(registry: Registry) -> None:
    assert [f.text for f in render(registry)] == [f.text for f in render(registry)]


def _walk_datasources(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if isinstance(node.get("datasource"), dict):
            found.append(node["datasource"])
        for value in node.values():
            found.extend(_walk_datasources(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_walk_datasources(value))
    return found


def test_round_trip_through_the_sdk_dashboard_model(boards: dict[str, dict[str, Any]]) -> None:
    for name, data in boards.items():
        model = Dashboard.from_json(data)
        again = json.loads(json.dumps(model, cls=JSONEncoder))
        assert again["panels"] == data["panels"], name
        assert again["templating"] == data["templating"], name
        assert {k: v for k, v in again.items() if k != "annotations"} == \
            {k: v for k, v in data.items() if k != "annotations"}, name
        assert all(isinstance(t, InfluxQLQuery | SqlQuery)
                   for p in model.panels or [] for t in getattr(p, "targets", None) or [])


def test_required_keys_and_layout(boards: dict[str, dict[str, Any]]) -> None:
    uids = set()
    for name, data in boards.items():
        assert data["uid"].startswith("gulou-") and 8 <= len(data["uid"]) <= 40, name
        uids.add(data["uid"])
        assert data["title"] and data["schemaVersion"] >= 39 and "gulou" in data["tags"]
        ids = [p["id"] for p in data["panels"]]
        assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids"
        for panel in data["panels"]:
            pos = panel["gridPos"]
            assert panel["type"] and panel["title"], name
            assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24 and pos["h"] > 0, (name, panel["title"])
            assert panel["targets"], (name, panel["title"])
            for target in panel["targets"]:
                if "rawSql" in target:  # the workflow's PostgreSQL table
                    assert target["rawSql"].startswith("SELECT") and target["format"] == "table"
                    continue
                assert target["rawQuery"] is True and target["query"].startswith("SELECT")
                assert target["resultFormat"] in ("time_series", "table")
    assert len(uids) == len(boards)


def test_every_datasource_reference_is_the_one_uid(boards: dict[str, dict[str, Any]]) -> None:
    refs = [ref for data in boards.values() for ref in _walk_datasources(data)]
    assert len(refs) > 100
    assert {(r["type"], r["uid"]) for r in refs} == {(DATASOURCE_TYPE, DATASOURCE_UID),
                                                     (WORKFLOW_DATASOURCE_TYPE, WORKFLOW_DATASOURCE_UID)}


def test_provisioning_and_push_use_the_same_datasource_uid() -> None:
    provisioned = yaml.safe_load((ROOT / "grafana/provisioning/datasources/gulou.yaml").read_text(encoding="utf-8"))
    source, workflow = provisioned["datasources"]
    assert (workflow["uid"], workflow["type"]) == (WORKFLOW_DATASOURCE_UID, WORKFLOW_DATASOURCE_TYPE)
    assert (source["uid"], source["type"]) == (DATASOURCE_UID, DATASOURCE_TYPE)
    assert source["jsonData"]["version"] == "InfluxQL"
    pushed = datasource_model(InfluxTarget("http://influxdb:8086", "gulou", "t"))
    assert (pushed["uid"], pushed["type"], pushed["name"]) == (source["uid"], source["type"], source["name"])
    provider = yaml.safe_load((ROOT / "grafana/provisioning/dashboards/gulou.yaml").read_text(encoding="utf-8"))
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards/gulou"


def test_geomap_looks_devices_up_in_the_generated_gazetteer(boards: dict[str, dict[str, Any]],
                                                           registry: Registry) -> None:
    geomap = next(p for p in boards["overview.json"]["panels"] if p["type"] == "geomap")
    layers = geomap["options"]["layers"]
    assert {layer["location"]["gazetteer"] for layer in layers} == {GAZETTEER_PATH}
    assert {layer["location"]["lookup"] for layer in layers} == {"device"}
    entries = json.loads((ROOT / DEFAULT_GAZETTEER).read_text(encoding="utf-8"))
    assert {e["key"] for e in entries} == set(registry.devices)
    first = registry.devices[entries[0]["key"]]
    assert (entries[0]["latitude"], entries[0]["longitude"]) == (first.lat, first.lon)


def test_air_limits_are_drawn_and_labelled(boards: dict[str, dict[str, Any]]) -> None:
    pm25 = next(p for p in boards["air.json"]["panels"] if p["title"].startswith("PM2.5"))
    aliases = {t.get("alias") for t in pm25["targets"]}
    assert {"GB 3095-2012 24 h 75", "GB 3095-2026 24 h 60"} <= {q.split('AS "')[1].split('"')[0]
                                                                 for q in (t["query"] for t in pm25["targets"][1:])}
    assert "$tag_device" in aliases
    assert pm25["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "dashed"


AQI_COLOURS = ["#00E400", "#FFFF00", "#FF7E00", "#FF0000", "#99004C", "#7E0023"]
AQI_WORDS = ["优", "良", "轻度污染", "中度污染", "重度污染", "严重污染"]


def _aqi_words(mappings: list[dict[str, Any]]) -> list[tuple[float | None, float | None, str, str]]:
    return [(m["options"]["from"], m["options"]["to"], m["options"]["result"]["text"], m["options"]["result"]["color"])
            for m in mappings]


@pytest.mark.parametrize(("board", "where"), [
    ("overview.json", '"street" =~ /^$street$/'),
    ("air.json", '"street" =~ /^$street$/ AND "device" =~ /^$device$/'),
])
def test_aqi_panels_use_the_aqi_series_and_the_standard_colours(boards: dict[str, dict[str, Any]], board: str,
                                                                where: str) -> None:
    # Station AQI panels (the district daily AQI of the report job has its own series and test).
    panels = [p for p in boards[board]["panels"] if "AQI" in p["title"] and not p["title"].startswith("全区日")]
    assert len(panels) >= 2
    expected_words = list(zip([0, 51, 101, 151, 201, 301], [50, 100, 150, 200, 300, None], AQI_WORDS, AQI_COLOURS,
                              strict=True))
    for panel in panels:
        steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
        assert [s["color"] for s in steps] == AQI_COLOURS, panel["title"]
        assert [s["value"] for s in steps] == [None, 51, 101, 151, 201, 301], panel["title"]
        assert all('FROM "aqi"' in t["query"] and where in t["query"] for t in panel["targets"]), panel["title"]
    station = next(p for p in panels if p["title"].startswith("各站"))
    assert station["targets"][0]["query"] == \
        f'SELECT last("aqi") FROM "aqi" WHERE $timeFilter AND {where} GROUP BY "device"'
    assert _aqi_words(station["fieldConfig"]["defaults"]["mappings"]) == expected_words
    worst = next(p for p in panels if p["title"].startswith("AQI 最差"))
    assert [t["query"] for t in worst["targets"]] == [
        f'SELECT max("a") FROM (SELECT last("aqi") AS "a" FROM "aqi" WHERE $timeFilter AND {where} '
        'GROUP BY "device")'] * 2
    # The number on its own, the category word from the same value next to it.
    (override,) = worst["fieldConfig"]["overrides"]
    assert override["matcher"] == {"id": "byFrameRefID", "options": "B"}
    assert _aqi_words(override["properties"][0]["value"]) == expected_words
    assert not worst["fieldConfig"]["defaults"].get("mappings")


def test_cli_check_reports_stale_files(tmp_path: Path) -> None:
    runner = CliRunner()
    out, gaz = tmp_path / "dash", tmp_path / "gaz.json"
    result = runner.invoke(cli, ["dashboards", "generate", "--out", str(out), "--gazetteer", str(gaz), "--check"])
    assert result.exit_code == 1 and "stale" in result.output
    result = runner.invoke(cli, ["dashboards", "generate", "--out", str(out), "--gazetteer", str(gaz), "--json"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)["written"]) == len(builders()) + 1
    (out / "air.json").write_text("{}", encoding="utf-8")
    result = runner.invoke(cli, ["dashboards", "generate", "--out", str(out), "--gazetteer", str(gaz), "--check",
                                 "--json"])
    assert result.exit_code == 1
    assert json.loads(result.output.split("\nError")[0])["stale"] == [str(out / "air.json")]
