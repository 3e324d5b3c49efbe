"""``gulou report daily|month|year``: flags, outputs, progress on stderr, a clear error without a store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from gulou.app.report import next_push, summary_lines, verdicts
from gulou.cli import cli
from gulou.devices.registry import dump_registry
from gulou.reports.model import Report
from gulou.reports.series import district_lines
from gulou.timeutil import CHINA_TZ
from tests.unit.reports import monthdata


@pytest.fixture(scope="module")
def registry_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated month's registry as a YAML file."""
    doc = monthdata.registry_doc()
    path = tmp_path_factory.mktemp("registry") / "registry.yaml"
    path.write_text(dump_registry(doc["sites"], doc["devices"]), encoding="utf-8")
    return path


def _invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    runner = CliRunner()
    result = runner.invoke(cli, list(args), env={"GULOU_REPORT__CACHE": "false", **(env or {})})
    return result.exit_code, result.stdout, result.stderr


def test_month_json_has_the_issue_keys_and_matches_the_report(month_store: Path, registry_file: Path,
                                                              month_report: Report) -> None:
    code, out, err = _invoke("report", "month", "--month", "2026-05", "--json", "--store", str(month_store),
                             "--registry", str(registry_file))
    assert code == 0, err
    data = json.loads(out)
    for key in ("district_daily_aqi", "good_day_ratio", "heavy_pollution_days", "pm25_mean", "capture_rate",
                "targets"):
        assert key in data, key
    assert len(data["district_daily_aqi"]) == 31
    assert set(data["district_daily_aqi"][0]) >= {"date", "aqi", "category", "primary_pollutants", "valid"}
    assert set(data["targets"][0]) >= {"id", "name", "target", "actual", "projected", "status"}
    # The month is over, so the figures are those of the report built on 2 June (the targets run to today).
    assert data["good_day_ratio"] == month_report.good_day_ratio
    assert data["heavy_pollution_days"] == month_report.heavy_pollution_days == 1
    assert [d["aqi"] for d in data["district_daily_aqi"]] == [d.aqi for d in month_report.district_daily_aqi]
    assert "building the month report" in err and "air readings to 2026-05" in err


def test_daily_writes_html_and_xlsx_and_prints_nothing_else(month_store: Path, registry_file: Path,
                                                            tmp_path: Path) -> None:
    html, xlsx = tmp_path / "day.html", tmp_path / "day.xlsx"
    code, out, err = _invoke("report", "daily", "--date", "2026-05-07", "--html", str(html), "--xlsx", str(xlsx),
                             "--store", str(month_store), "--registry", str(registry_file))
    assert code == 0, err
    assert out == "" and f"wrote {html}" in err and f"wrote {xlsx}" in err
    assert "2026年5月7日" in html.read_text(encoding="utf-8") and xlsx.stat().st_size > 5000


def test_year_summary_on_the_terminal(month_store: Path, registry_file: Path) -> None:
    code, out, err = _invoke("report", "year", "--year", "2026", "--store", str(month_store),
                             "--registry", str(registry_file))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("鼓楼区生态环境年报 2026年")
    assert any(line.startswith("优良天数比例") for line in lines)
    may = next(line for line in lines if line.strip().startswith("2026-05"))
    assert "重污染 1 天" in may  # 7 May, district PM2.5 170
    assert sum(line.startswith("目标 ") for line in lines) >= 8


def test_a_missing_store_is_a_clear_error(tmp_path: Path, registry_file: Path) -> None:
    missing = tmp_path / "nothing.db"
    code, out, err = _invoke("report", "daily", "--date", "2026-05-07", "--store", str(missing),
                             "--registry", str(registry_file))
    assert code == 1 and f"no store at {missing}" in err and out == ""
    assert not missing.exists(), "a report never creates a store"


def test_bad_targets_file_and_future_period_are_clear_errors(month_store: Path, registry_file: Path,
                                                             tmp_path: Path) -> None:
    targets = tmp_path / "targets.yaml"
    targets.write_text(yaml.safe_dump({"plan": "x", "targets": [], "extra": 1}), encoding="utf-8")
    code, _, err = _invoke("report", "month", "--month", "2026-05", "--targets", str(targets),
                           "--store", str(month_store), "--registry", str(registry_file))
    assert code == 1 and str(targets) in err
    code, _, err = _invoke("report", "year", "--year", "2099", "--store", str(month_store),
                           "--registry", str(registry_file))
    assert code == 1 and "has not started yet" in err
    code, _, err = _invoke("report", "month", "--month", "2026-13", "--store", str(month_store))
    assert code == 2 and "YYYY-MM" in err


def test_summary_verdicts_and_series_of_a_report(month_report: Report) -> None:
    lines = summary_lines(month_report)
    assert lines[0] == month_report.title and len(lines) > 31
    assert any(line.strip().startswith("2026-05-07  AQI 220  重度污染") for line in lines)
    judged = {v.id: v for v in verdicts(month_report)}
    assert set(judged) == {t.id for t in month_report.targets}
    good = judged["good_day_ratio"]
    assert good.kind == "min" and good.actual_text.endswith("%") and good.goal().startswith("≥")
    series = district_lines(month_report.district_daily_aqi)
    assert len(series) == 31
    # 7 May: district PM2.5 170 → AQI 220 (the 2026 column 150–250: 200 + 100/100 × 20), heavy, not good.
    may7 = next(line for line in series if line.endswith(str(int(datetime(2026, 5, 7, tzinfo=CHINA_TZ)
                                                                   .timestamp() * 1000))))
    assert "aqi=220i" in may7 and "good=0i" in may7 and "heavy=1i" in may7 and "valid=true" in may7
    may25 = next(line for line in series if line.endswith(str(int(datetime(2026, 5, 25, tzinfo=CHINA_TZ)
                                                                    .timestamp() * 1000))))
    assert "valid=false" in may25 and "aqi=" not in may25 and "good=" not in may25


def test_next_push_is_the_next_beijing_moment() -> None:
    before = datetime(2026, 5, 8, 8, 0, tzinfo=CHINA_TZ)
    assert next_push("08:30", before) == before.replace(minute=30)
    assert next_push("08:30", before.replace(minute=30)) == before.replace(minute=30) + timedelta(days=1)
    # 23:00 UTC on 7 May is 07:00 on 8 May in Beijing: the push is at 08:30 that morning.
    utc = datetime(2026, 5, 7, 23, 0, tzinfo=UTC)
    assert next_push("08:30", utc) == datetime(2026, 5, 8, 8, 30, tzinfo=CHINA_TZ)
