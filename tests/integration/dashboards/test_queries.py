"""Every dashboard query, variable query and annotation query executed against a real InfluxQL engine."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from gulou.dashboards.generate import build_all
from gulou.devices.registry import Registry
from gulou.reports.model import DayAqi
from gulou.reports.series import district_lines
from gulou.timeutil import CHINA_TZ
from tests.integration.dashboards.conftest import Influx

pytestmark = pytest.mark.integration


def _variables(board: dict[str, Any]) -> list[dict[str, Any]]:
    return list(board.get("templating", {}).get("list", []))


def _panel_queries(board: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for panel in board.get("panels", []):
        for target in panel.get("targets", []):
            if "rawSql" in target:  # the workflow's PostgreSQL table: tests/integration/workflow/test_grafana_query.py
                continue
            out.append((f"{board['uid']} / {panel.get('title')} / {target['refId']}", target["query"]))
    return out


def _substitute(query: str, influx: Influx, values: dict[str, list[str]], interval: str = "1m") -> str:
    """Interpolate the way Grafana's InfluxDB datasource does for raw queries."""
    query = query.replace("$timeFilter", f"time >= {influx.start_ms}ms and time <= {influx.end_ms}ms")
    query = query.replace("$__interval", interval)
    for name in sorted(values, key=len, reverse=True):
        chosen = values[name]
        # Multi-value/All inside a regex becomes (a|b|c) with regex metacharacters escaped.
        regex = "(" + "|".join(re.escape(v) for v in chosen) + ")" if len(chosen) != 1 else re.escape(chosen[0])
        query = query.replace(f"${name}", regex)
    assert not re.search(r"\$[a-z_]", query), f"unsubstituted variable in {query}"
    return query


def _tag_values(influx: Influx, query: str) -> list[str]:
    body = influx.query(query)
    series = body["results"][0].get("series", [])
    return [row[1] for s in series for row in s["values"]]


def _resolve_variables(influx: Influx, board: dict[str, Any]) -> dict[str, list[str]]:
    """Run each variable's query in order (later ones may use earlier ones), selecting All."""
    values: dict[str, list[str]] = {}
    for var in _variables(board):
        if var.get("type") == "textbox":  # a typed-in value (the alert API's address), not a query
            continue
        found = _tag_values(influx, _substitute(var["query"], influx, values))
        assert found, f"{board['uid']}: variable {var['name']} returned no values"
        values[var["name"]] = found
    return values


def _rows(body: dict[str, Any]) -> int:
    return sum(len(s.get("values", [])) for r in body["results"] for s in r.get("series", []))


@pytest.fixture(scope="module")
def boards(registry: Registry) -> dict[str, dict[str, Any]]:
    """The dashboards as the generator builds them."""
    return build_all(registry)


def test_every_panel_query_returns_rows(loaded_influx: Influx, boards: dict[str, dict[str, Any]]) -> None:
    empty, count = [], 0
    for board in boards.values():
        values = _resolve_variables(loaded_influx, board)
        for label, query in _panel_queries(board):
            count += 1
            if _rows(loaded_influx.query(_substitute(query, loaded_influx, values))) == 0:
                empty.append(label)
    assert count >= 40
    assert not empty, f"queries without rows ({loaded_influx.source} data): {empty}"


def test_queries_run_for_a_single_selected_value(loaded_influx: Influx, boards: dict[str, dict[str, Any]]) -> None:
    """One real value per variable (as an operator would pick): every query still parses and runs."""
    for board in boards.values():
        values = {k: v[:1] for k, v in _resolve_variables(loaded_influx, board).items()}
        for _label, query in _panel_queries(board):
            loaded_influx.query(_substitute(query, loaded_influx, values))


def test_annotation_query_returns_alert_messages(loaded_influx: Influx, boards: dict[str, dict[str, Any]]) -> None:
    queries = {a["target"]["query"] for b in boards.values() for a in b["annotations"]["list"]}
    assert queries == {"SELECT message FROM alerts WHERE $timeFilter"}
    body = loaded_influx.query(_substitute(queries.pop(), loaded_influx, {}))
    series = body["results"][0]["series"][0]
    assert series["columns"] == ["time", "message"]
    assert any("超标" in row[1] for row in series["values"])


def test_street_variable_lists_the_registry_streets(loaded_influx: Influx, registry: Registry,
                                                    boards: dict[str, dict[str, Any]]) -> None:
    street = next(v for v in _variables(boards["overview.json"]) if v["name"] == "street")
    assert street["query"] == 'SHOW TAG VALUES FROM "device_status" WITH KEY = "street"'
    assert set(_tag_values(loaded_influx, street["query"])) == {d.street for d in registry}


def test_section_variable_lists_the_river_sections(loaded_influx: Influx, registry: Registry,
                                                   boards: dict[str, dict[str, Any]]) -> None:
    section = next(v for v in _variables(boards["water.json"]) if v["name"] == "section")
    assert section["query"] == 'SHOW TAG VALUES FROM "water" WITH KEY = "site"'
    expected = {d.site.id for d in registry if d.domain == "water"}
    assert set(_tag_values(loaded_influx, section["query"])) == expected
    assert all(registry.sites[s].kind == "river_section" for s in expected)


def test_device_variable_is_filtered_by_street(loaded_influx: Influx, registry: Registry,
                                               boards: dict[str, dict[str, Any]]) -> None:
    device = next(v for v in _variables(boards["air.json"]) if v["name"] == "device")
    street = next(d.street for d in registry if d.domain == "air")
    found = _tag_values(loaded_influx, _substitute(device["query"], loaded_influx, {"street": [street]}))
    assert set(found) == {d.id for d in registry if d.domain == "air" and d.street == street}


def test_active_alert_count_ignores_resolved_pairs(loaded_influx: Influx, boards: dict[str, dict[str, Any]]) -> None:
    overview = boards["overview.json"]
    panel = next(p for p in overview["panels"] if p["title"].startswith("活动告警"))
    body = loaded_influx.query(_substitute(panel["targets"][0]["query"], loaded_influx, {}))
    counts = {s["tags"]["severity"]: s["values"][0][1] for s in body["results"][0]["series"]}
    # Five pairs fired (medium, high, critical, low, high); the medium one was resolved afterwards.
    assert counts == {"high": 2, "critical": 1, "low": 1}


def _series_values(influx: Influx, query: str, values: dict[str, list[str]]) -> dict[str, float]:
    body = influx.query(_substitute(query, influx, values))
    return {s.get("tags", {}).get("device", s["name"]): s["values"][-1][1] for s in body["results"][0]["series"]}


def test_aqi_panels_read_the_aqi_series(loaded_influx: Influx, registry: Registry,
                                        boards: dict[str, dict[str, Any]]) -> None:
    air_devices = {d.id for d in registry if d.domain == "air"}
    for name in ("overview.json", "air.json"):
        values = _resolve_variables(loaded_influx, boards[name])
        panels = {p["title"]: p for p in boards[name]["panels"] if "AQI" in p["title"]}
        station = next(p for t, p in panels.items() if t.startswith("各站"))
        worst = next(p for t, p in panels.items() if t.startswith("AQI 最差"))
        latest = _series_values(loaded_influx, station["targets"][0]["query"], values)
        assert set(latest) == air_devices, name
        assert all(isinstance(v, int) and 0 <= v <= 500 for v in latest.values()), name
        for target in worst["targets"]:
            assert list(_series_values(loaded_influx, target["query"], values).values()) == [max(latest.values())], name


def _district_day(day: date, aqi_value: int | None) -> DayAqi:
    valid = aqi_value is not None
    return DayAqi(date=day, aqi=aqi_value, category="优" if valid else None, colour=None, primary_pollutants=[],
                  valid=valid, concentrations={"pm25": 30.0} if valid else {}, stations={},
                  reasons=[] if valid else ["无数据"], standard="HJ 633-2026 / GB 3095-2026" if valid else None,
                  indicative=True)


def test_good_day_ratio_and_heavy_days_read_the_district_series(loaded_influx: Influx,
                                                                 boards: dict[str, dict[str, Any]]) -> None:
    # Ten January days of 2025, away from the fixture's data: 6 good, 1 light, 2 heavy, 1 without a figure.
    aqis = [40, 60, 80, 95, 100, 50, 120, 230, 310, None]
    days = [_district_day(date(2025, 1, 1) + timedelta(days=i), a) for i, a in enumerate(aqis)]
    loaded_influx.write(district_lines(days))
    window = Influx(loaded_influx.url, start_ms=int(datetime(2025, 1, 1, tzinfo=CHINA_TZ).timestamp() * 1000),
                    end_ms=int(datetime(2025, 1, 11, tzinfo=CHINA_TZ).timestamp() * 1000) - 1)
    panels = {p["title"].split(" ")[0]: p for p in boards["air.json"]["panels"]}

    def value(title: str) -> float:
        body = loaded_influx.query(_substitute(panels[title]["targets"][0]["query"], window, {}))
        return float(body["results"][0]["series"][0]["values"][0][1])

    # 优良天数比例 = good days / valid days: 6 / 9 (the day without a figure counts in neither).
    assert value("优良天数比例") == pytest.approx(6 / 9)
    assert value("重污染天数") == 2
    body = loaded_influx.query(_substitute(panels["全区日"]["targets"][0]["query"], window, {}))
    assert [row[1] for row in body["results"][0]["series"][0]["values"]] == [a for a in aqis if a is not None]
