"""Rule files: validation errors name file, rule id and field; the shipped set; the CLI check/list."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from gulou.cli import cli
from gulou.devices.catalog import DOMAINS
from gulou.rules.model import (
    SEVERITIES,
    AbsenceRule,
    RuleError,
    default_rule_files,
    load_rules,
    parse_rules,
)

GOOD = """
rules:
- id: bin-hot
  kind: threshold
  domain: waste
  device_type: smart_bin
  metric: temperature
  op: ">="
  limit: 60
  severity: critical
  message: "{site_name}起火"
  message_en: "fire at {site_name}"
  source: "practice [M]"
"""


def _bad(tmp_path: Path, old: str, new: str) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(GOOD.replace(old, new), encoding="utf-8")
    return path


@pytest.mark.parametrize(("old", "new", "field"), [
    ("severity: critical", "severity: urgent", "severity"),
    ("metric: temperature", "metric: temp", "metric"),
    ('op: ">="', 'op: "=>"', "op"),
    ("limit: 60", "limit: {value: 60, site: tilt_limit}", "limit"),
    ("device_type: smart_bin", "device_type: air_station", "device_type"),
    ('message: "{site_name}起火"', 'message: "{sitename}起火"', "message"),
    ("  source: \"practice [M]\"\n", "", "source"),
    ("kind: threshold", "kind: held", "for_count"),
    ("domain: waste", "domain: waste\n  colour: red", "colour"),
])
def test_loader_errors_name_file_rule_and_field(tmp_path: Path, old: str, new: str, field: str) -> None:
    path = _bad(tmp_path, old, new)
    with pytest.raises(RuleError) as exc:
        load_rules([path])
    text = str(exc.value)
    assert text.startswith(f"{path}:") and "rule 'bin-hot'" in text and field in text


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(GOOD, encoding="utf-8")
    b.write_text(GOOD, encoding="utf-8")
    with pytest.raises(RuleError, match=r"b\.yaml: rule 'bin-hot': id: duplicate, already defined in .*a\.yaml"):
        load_rules([a, b])


def test_not_a_rule_file() -> None:
    with pytest.raises(RuleError, match=r"x\.yaml: expected a mapping with a 'rules' list"):
        parse_rules("- 1\n", "x.yaml")
    with pytest.raises(RuleError, match=r"x\.yaml: not valid YAML"):
        parse_rules("rules: [\n", "x.yaml")


def test_default_set_loads_and_covers_every_domain() -> None:
    rules = load_rules()
    assert [p.name for p in default_rule_files()] == sorted(p.name for p in default_rule_files())
    assert {r.domain for r in rules} == set(DOMAINS)
    offline = {r.domain for r in rules if isinstance(r, AbsenceRule)}
    assert offline == set(DOMAINS)
    assert {r.kind for r in rules} == {"threshold", "held", "window", "rate", "absence", "ratio", "point", "target"}
    for r in rules:
        assert r.severity in SEVERITIES
        assert re.search(r"[\u4e00-\u9fff]", r.message), r.id  # Chinese message
        # Every figure names its source; uncertain ones carry a confidence mark.
        assert re.search(r"\[(H|M|U)[\]:]", r.source) or "plan" in r.source, r.id


def test_cli_check_ok_and_error(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(cli, ["rules", "check", *map(str, default_rule_files())])
    assert ok.exit_code == 0, ok.output
    assert "waste.yaml: 7 rule(s) OK" in ok.output
    bad = _bad(tmp_path, "metric: temperature", "metric: temp")
    result = runner.invoke(cli, ["rules", "check", str(bad)])
    assert result.exit_code != 0
    assert str(bad) in result.output and "'bin-hot'" in result.output and "metric" in result.output
    as_json = runner.invoke(cli, ["rules", "check", "--json", str(bad)])
    assert as_json.exit_code != 0 and '"ok": false' in as_json.output


def test_cli_list_json() -> None:
    result = CliRunner().invoke(cli, ["rules", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    by_id = {r["id"]: r for r in rows}
    assert by_id["air-pm25-24h-class2"]["limit"] == "> 75 / 60 from 2026-03-01 / 50 from 2031-01-01"
    assert by_id["structure-tilt-orange"]["limit"] == ">= 0.85 x tilt_limit"


def test_cli_alerts_without_store(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["alerts", "--store", str(tmp_path / "none.db"), "--json"])
    assert result.exit_code != 0 and "no store at" in result.output
