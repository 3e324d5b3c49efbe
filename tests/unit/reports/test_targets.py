"""The targets file: validation, and each target's actual, projection, capture and status."""

from __future__ import annotations

import shutil
from datetime import date, datetime
from pathlib import Path

import pytest
import yaml

from gulou.devices.registry import Registry
from gulou.reports.build import build_report, period_for
from gulou.reports.model import Report
from gulou.reports.push import report_markdown
from gulou.reports.targets import Figure, TargetsError, TargetsFile, load_targets, status
from gulou.rules.standards import CHINA_TZ
from gulou.sinks.embedded import EmbeddedStore
from gulou.tsdb.records import Batch, Point
from tests.unit.reports import monthdata

SHIPPED = Path(__file__).parents[3] / "src/gulou/data/targets.yaml"


def test_the_shipped_file_loads_and_marks_every_figure() -> None:
    targets = load_targets()
    ids = [t.id for t in targets.targets]
    assert ids == ["good_day_ratio", "pm25_annual_mean", "pm25_fall", "heavy_pollution_days",
                   "drinking_water_compliance", "inner_river_compliance", "black_odour_free_rivers",
                   "sorting_correct_rate", "sorting_coverage", "sorting_participation"]
    for target in targets.targets:
        for year, figure in target.years.items():
            assert any(mark in figure.source for mark in ("[H]", "[M]", "[U]")), (target.id, year)
    # Where the plan only says "the yearly figure assigned from above", the figure is a marked placeholder.
    good = next(t for t in targets.targets if t.id == "good_day_ratio")
    assert good.note is not None and "上级下达" in good.note
    assert all("[U]" in f.source for f in good.years.values())
    assert {t.measured_by for t in targets.targets if t.id.startswith("sorting_c")} == {"sensors", "district"}


def _write(tmp_path: Path, change: str, replacement: str) -> Path:
    text = SHIPPED.read_text(encoding="utf-8")
    assert change in text
    path = tmp_path / "targets.yaml"
    path.write_text(text.replace(change, replacement, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(("change", "replacement", "message"), [
    ('{value: 0.97, source: "[U] placeholder for the figure assigned from above"}',
     '{value: 0.97, source: "placeholder"}', "no confidence mark"),
    ("  - id: pm25_fall\n", "  - id: pm25_rise\n", "no evaluator for a sensor-measured target"),
    ("  - id: pm25_fall\n", "  - id: good_day_ratio\n", "target ids must be unique"),
    ('{value: 0.97, source: "[U] placeholder for the figure assigned from above"}',
     '{value: 97, source: "[U] placeholder"}', "a ratio target must lie in 0..1"),
    ("    kind: min\n", "    kind: at_least\n", "kind"),
    ("    measured_by: sensors\n", "    measured_by: sensors\n    extra: 1\n", "extra"),
])
def test_a_bad_file_is_refused_with_its_name(tmp_path: Path, change: str, replacement: str, message: str) -> None:
    path = _write(tmp_path, change, replacement)
    with pytest.raises(TargetsError, match=message) as caught:
        load_targets(path)
    assert str(path) in str(caught.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(TargetsError, match="targets file missing"):
        load_targets(tmp_path / "none.yaml")


@pytest.mark.parametrize(("kind", "target", "figure", "complete", "expected"), [
    ("min", 0.97, Figure(None, None, None, 0.0), False, "no_data"),
    ("min", 0.97, Figure(0.98, 0.98, 0.99, 1.0), False, "on_track"),
    ("min", 0.97, Figure(0.90, 0.90, 0.98, 1.0), False, "at_risk"),  # projection short, still reachable
    ("min", 0.97, Figure(0.90, 0.90, 0.95, 1.0), False, "missed"),  # even all good days cannot reach it
    ("max", 0.0, Figure(1.0, 12.6, 1.0, 1.0), False, "missed"),  # a heavy day already happened
    ("max", 25.0, Figure(24.0, 24.0, 5.0, 1.0), False, "on_track"),
    ("min", 0.97, Figure(0.97, 0.97, None, 1.0), True, "on_track"),  # exactly on target at year end
    ("min", 0.97, Figure(0.969, 0.969, None, 1.0), True, "missed"),
])
def test_status_rules(kind: str, target: float, figure: Figure, complete: bool, expected: str) -> None:
    assert status(kind, target, figure, complete) == expected


def test_targets_of_the_month_report(month_report: Report) -> None:
    got = {t.id: t for t in month_report.targets}
    # Year to date (2026-01-01 to 2026-06-01): 151 days elapsed, 214 to go; data only in May.
    good = got["good_day_ratio"]
    assert (good.actual, good.projected, good.capture_rate, good.status) == (0.8966, 0.8966, round(29 / 151, 4),
                                                                             "at_risk")
    assert (got["pm25_annual_mean"].actual, got["pm25_annual_mean"].status) == (49.6, "at_risk")
    heavy = got["heavy_pollution_days"]
    assert (heavy.actual, heavy.projected, heavy.status) == (1.0, round(365 / 29, 1), "missed")
    assert (got["drinking_water_compliance"].actual, got["drinking_water_compliance"].status) == (1.0, "on_track")
    # Sections x months due: 1 drinking section x 5 months; 1 classed.
    assert got["drinking_water_compliance"].capture_rate == 0.2
    # Inner rivers: 0 of 2 meet IV; even with every later month meeting, 14 / 16 < 100 %: missed.
    assert (got["inner_river_compliance"].actual, got["inner_river_compliance"].status) == (0.0, "missed")
    assert (got["black_odour_free_rivers"].actual, got["black_odour_free_rivers"].status) == (0.6667, "at_risk")
    assert (got["sorting_correct_rate"].actual, got["sorting_correct_rate"].status) == (0.9667, "on_track")
    assert got["sorting_coverage"].status == "no_data" and got["sorting_coverage"].measured_by == "district"
    assert got["pm25_fall"].status == "no_data"  # no previous year in the store and no baseline


def test_a_baseline_and_a_reported_figure(month_store: Path, month_registry: Registry) -> None:
    raw = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    for target in raw["targets"]:
        if target["id"] == "pm25_fall":
            target["baselines"] = {2025: {"value": 50.0, "source": "2025 年环境质量公报 [H]"}}
        if target["id"] == "sorting_coverage":
            target["reported"] = {2026: {"value": 0.92, "as_of": "2026-05-31", "source": "街道上报"}}
    targets = TargetsFile.model_validate(raw)
    report = build_report(month_store, month_registry, "month", monthdata.MONTH_START, now=monthdata.REPORT_NOW,
                          targets=targets)
    got = {t.id: t for t in report.targets}
    # (50 - 49.586) / 50 from the unrounded year-to-date mean 1438 / 29.
    assert got["pm25_fall"].actual == round((50 - 1438 / 29) / 50, 4)
    assert got["pm25_fall"].status == "on_track"
    assert (got["sorting_coverage"].actual, got["sorting_coverage"].status) == (0.92, "at_risk")


def test_periods_in_beijing_time() -> None:
    now = datetime(2026, 6, 2, 10, 37, tzinfo=CHINA_TZ)
    day = period_for("daily", date(2026, 6, 2), now)
    assert (day.start.isoformat(), day.data_until.isoformat(), day.complete) == (
        "2026-06-02T00:00:00+08:00", "2026-06-02T10:00:00+08:00", False)
    assert day.label == "2026年6月2日（截至6月2日10时）"
    month = period_for("month", date(2026, 5, 17), now)
    assert (month.start.day, month.end.isoformat(), month.complete) == (1, "2026-06-01T00:00:00+08:00", True)
    year = period_for("year", date(2026, 3, 1), now)
    assert (year.start.isoformat(), year.complete) == ("2026-01-01T00:00:00+08:00", False)
    with pytest.raises(ValueError, match="has not started"):
        period_for("daily", date(2026, 6, 3), now)


def test_json_keys(month_report: Report) -> None:
    data = month_report.to_json()
    for key in ("district_daily_aqi", "good_day_ratio", "heavy_pollution_days", "pm25_mean", "capture_rate",
                "targets"):
        assert key in data
    day = data["district_daily_aqi"][6]  # type: ignore[index]
    assert {"date", "aqi", "category", "primary_pollutants", "valid"} <= set(day)
    assert day["date"] == "2026-05-07" and day["aqi"] == 220
    target = data["targets"][0]  # type: ignore[index]
    assert {"id", "name", "target", "actual", "projected", "status"} <= set(target)
    assert data["generated_at"] == "2026-06-02T10:00:00+08:00"


def test_push_message_carries_the_key_figures(month_report: Report) -> None:
    title, text = report_markdown(month_report, "https://reports.example/2026-05.html")
    assert title == "鼓楼区生态环境月报 2026年5月"
    assert "全区 AQI：**101**（轻度污染），首要污染物：PM2.5（5月31日）" in text
    assert "优良天数比例：89.7%（26/29 天），重污染 1 天" in text
    assert "黑臭：东西河" in text and "测试楼一（橙色预警）" in text
    assert "目标「重污染天数」：未完成" in text
    assert text.endswith("[查看完整报告](https://reports.example/2026-05.html)")


def test_daily_reports_reuse_cached_months(month_store: Path, month_registry: Registry, tmp_path: Path) -> None:
    store = tmp_path / "gulou.db"
    shutil.copyfile(month_store, store)
    cache = tmp_path / "cache"
    day = date(2026, 6, 1)
    plain = build_report(store, month_registry, "daily", day, now=monthdata.REPORT_NOW)
    first = build_report(store, month_registry, "daily", day, now=monthdata.REPORT_NOW, cache_dir=cache)
    may = sorted(p.name for p in cache.glob("air-daily-*-2026-05-*.parquet"))
    assert len(may) == 1 and "-2026-05-127588-" in may[0]  # 127588 air readings stored for May
    second = build_report(store, month_registry, "daily", day, now=monthdata.REPORT_NOW, cache_dir=cache)
    assert first.targets == second.targets == plain.targets
    assert second.targets[0].actual == 0.8966  # May's 26 good of 29 valid days, read from the cache
    # A late reading for May changes the month's count: its entry is computed again under a new name.
    writer = EmbeddedStore(store)
    writer.write(Batch(points=[Point("aq-a", "air", "air_station", "鼓东街道", "air-a",
                                     int(datetime(2026, 5, 25, 12, tzinfo=CHINA_TZ).timestamp() * 1000),
                                     {"pm25": 10.0})]))
    writer.close()
    build_report(store, month_registry, "daily", day, now=monthdata.REPORT_NOW, cache_dir=cache)
    assert [p.name for p in cache.glob("air-daily-*-2026-05-*.parquet")] == [may[0].replace("127588", "127589")]
