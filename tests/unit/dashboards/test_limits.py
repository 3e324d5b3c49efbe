"""The dashboards draw the standards tables and rule files: a drawn limit that drifts from its home fails here."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from gulou.dashboards.generate import build_all
from gulou.devices.registry import Registry
from gulou.reports.targets import load_targets
from gulou.rules.model import RatioRule, ThresholdRule, load_rules
from gulou.rules.standards import air_limit, set_data_dir
from gulou.rules.standards.tables import black_odour_table, gb3095, gb3838, hj633, structure_table

LINE = re.compile(r'\* 0 \+ (?P<value>[-0-9.e]+) AS "(?P<label>[^"]+)"')


@pytest.fixture(scope="module")
def boards(registry: Registry) -> dict[str, dict[str, Any]]:
    return build_all(registry)


def _panel(board: dict[str, Any], title_start: str) -> dict[str, Any]:
    return next(p for p in board["panels"] if p["title"].startswith(title_start))


def _lines(panel: dict[str, Any]) -> dict[str, float]:
    """The labelled constant lines of a panel: label → value."""
    found = {}
    for target in panel["targets"]:
        match = LINE.search(target["query"])
        if match:
            found[match["label"]] = float(match["value"])
    return found


def _steps(panel: dict[str, Any]) -> list[float]:
    return [s["value"] for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"] if s["value"] is not None]


def _rule_limit(rule_id: str) -> float:
    rule = next(r for r in load_rules() if r.id == rule_id)
    assert isinstance(rule, ThresholdRule | RatioRule), rule_id
    assert rule.limit.value is not None, rule_id
    return float(rule.limit.value * rule.limit.factor)


AIR_PANELS = {"pm25": "PM2.5", "pm10": "PM10", "so2": "SO₂", "no2": "NO₂", "o3": "O₃", "co": "CO"}


@pytest.mark.parametrize("pollutant", sorted(AIR_PANELS))
def test_air_lines_are_the_gb3095_limits_of_every_rule_set(boards: dict[str, dict[str, Any]], pollutant: str) -> None:
    panel = _panel(boards["air.json"], AIR_PANELS[pollutant] + " ")
    period = "24h" if pollutant in ("pm25", "pm10") else "1h"
    # Through the standards API, by the date each rule set starts: the values the rules engine applies.
    expected = {air_limit(pollutant, period, rs.since or date(2000, 1, 1)).value for rs in gb3095().rule_sets}
    drawn = _lines(panel)
    assert set(drawn.values()) == expected, drawn
    assert min(_steps(panel)) == min(expected)


def test_daily_particle_panel_colours_at_the_pm25_limits(boards: dict[str, dict[str, Any]]) -> None:
    panel = _panel(boards["air.json"], "24 小时均值")
    pm25 = {gb3095().limits(rs.limits)["pm25"]["24h"].value for rs in gb3095().rule_sets}
    assert set(_steps(panel)) == pm25
    for value in pm25:
        assert f"{value:g} (" in panel["description"]


def test_good_day_ratio_reads_the_district_series_against_the_plan_target(
        boards: dict[str, dict[str, Any]]) -> None:
    panel = _panel(boards["air.json"], "优良天数比例")
    assert panel["targets"][0]["query"] == 'SELECT mean("good") AS "ratio" FROM "district_aqi" WHERE $timeFilter'
    target = next(t for t in load_targets().targets if t.id == "good_day_ratio")
    latest = target.years[max(target.years)].value
    assert _steps(panel)[-1] == latest and f"{latest:.0%}" in panel["description"]
    heavy = _panel(boards["air.json"], "重污染天数")
    assert heavy["targets"][0]["query"] == 'SELECT sum("heavy") AS "days" FROM "district_aqi" WHERE $timeFilter'
    district = _panel(boards["air.json"], "全区日 AQI")
    assert district["targets"][0]["query"] == 'SELECT "aqi" FROM "district_aqi" WHERE $timeFilter'
    steps = district["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["color"] for s in steps] == [c.colour for c in hj633().categories]
    assert district["fieldConfig"]["defaults"]["color"]["mode"] == "thresholds"


def test_aqi_colours_and_edges_are_hj633_categories(boards: dict[str, dict[str, Any]]) -> None:
    categories = hj633().categories
    starts = [c.max_aqi + 1 for c in categories[:-1] if c.max_aqi is not None]
    panel = _panel(boards["air.json"], "小时 AQI")
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["color"] for s in steps] == [c.colour for c in categories]
    assert _steps(panel) == starts


@pytest.mark.parametrize("metric", ["do", "nh3n", "codmn", "tp"])
def test_water_lines_are_gb3838_class_limits(boards: dict[str, dict[str, Any]], metric: str) -> None:
    names = {"do": "溶解氧", "nh3n": "氨氮", "codmn": "高锰酸盐", "tp": "总磷"}
    drawn = _lines(_panel(boards["water.json"], names[metric]))
    limits = gb3838().indicators[metric].limits
    assert limits is not None
    assert sorted(drawn.values()) == sorted(limits[2:])  # classes III, IV, V
    for label, value in drawn.items():
        klass = label.split()[2]
        assert limits[list(gb3838().classes).index(klass)] == value, label


def test_transparency_lines_are_the_black_odour_bands(boards: dict[str, dict[str, Any]]) -> None:
    drawn = _lines(_panel(boards["water.json"], "透明度"))
    band = black_odour_table().indicators["transparency"]
    assert sorted(drawn.values()) == sorted([band.light_from, band.severe_from])


def test_structure_lines_and_tiers_are_the_structure_table(boards: dict[str, dict[str, Any]]) -> None:
    table = structure_table()
    expected = {
        "倾斜率": min(t.value for t in table.tilt_limits) * 100,
        "裂缝宽度": table.crack_limits["masonry"].value,
        "沉降速率": table.component_limits["settlement_mm_per_day"].value,
        "振动": table.component_limits["vibration_ppv_mm_s"].value,
    }
    fractions = [table.tiers[t].value for t in ("yellow", "orange", "red")]
    for title, limit in expected.items():
        panel = _panel(boards["structure.json"], title)
        assert list(_lines(panel).values()) == [pytest.approx(limit)], title
        assert _steps(panel) == [pytest.approx(round(limit * f, 4)) for f in fractions], title


def test_waste_and_parking_colour_at_the_rule_limits(boards: dict[str, dict[str, Any]]) -> None:
    fill = _panel(boards["waste.json"], "满溢度")
    assert _steps(fill) == [_rule_limit("waste-bin-dispatch"), _rule_limit("waste-bin-overflow")]
    trend = _panel(boards["waste.json"], "分类准确率趋势")
    assert _steps(trend) == [_rule_limit("waste-sorting-rate-daily")]
    occupancy = _panel(boards["parking.json"], "占用率")
    assert _steps(occupancy) == [_rule_limit("parking-tight"), _rule_limit("parking-full")]
    bins = _panel(boards["overview.json"], "待清运垃圾桶")
    assert f'"f" >= {_rule_limit("waste-bin-dispatch"):g}' in bins["targets"][0]["query"]


@pytest.fixture
def edited_tables(tmp_path: Path) -> Iterator[Path]:
    """A copy of the standards tables with a PM2.5 limit, a water limit and the tiers changed."""
    source = Path(str(resources.files("gulou.data.standards")))
    for name in ("gb3095.yaml", "gb3838.yaml", "structure.yaml"):
        shutil.copy(source / name, tmp_path / name)
    doc = yaml.safe_load((tmp_path / "gb3095.yaml").read_text(encoding="utf-8"))
    doc["limit_sets"]["GB 3095-2026 transition"]["pm25"]["24h"]["value"] = 55
    (tmp_path / "gb3095.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    doc = yaml.safe_load((tmp_path / "gb3838.yaml").read_text(encoding="utf-8"))
    doc["indicators"]["codmn"]["limits"] = [2, 4, 6.5, 10, 15]
    (tmp_path / "gb3838.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    doc = yaml.safe_load((tmp_path / "structure.yaml").read_text(encoding="utf-8"))
    doc["tiers"]["yellow"]["value"] = 0.6
    (tmp_path / "structure.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    set_data_dir(tmp_path)
    try:
        yield tmp_path
    finally:
        set_data_dir(None)


def test_a_changed_table_changes_the_dashboards(edited_tables: Path, registry: Registry) -> None:
    boards = build_all(registry)
    pm25 = _lines(_panel(boards["air.json"], "PM2.5 "))
    assert 55 in pm25.values() and 60 not in pm25.values()
    codmn = _lines(_panel(boards["water.json"], "高锰酸盐"))
    assert 6.5 in codmn.values() and 6 not in codmn.values()
    crack = _panel(boards["structure.json"], "裂缝宽度")
    assert _steps(crack)[0] == pytest.approx(0.6 * structure_table().crack_limits["masonry"].value)


def test_alert_boards_colour_every_rule_severity() -> None:
    from gulou.dashboards.operations import SEVERITY_COLOURS
    from gulou.rules.model import SEVERITIES

    assert set(SEVERITY_COLOURS) == set(SEVERITIES)
