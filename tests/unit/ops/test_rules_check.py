"""``gulou rules check`` warns about a rule that matches no device of the registry, without failing."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from gulou.cli import cli

RULES = """rules:
- id: vibration-one-building
  kind: threshold
  domain: structure
  device_type: structure_monitor
  selector: {devices: [st-001-ne]}
  metric: vibration
  op: ">"
  limit: 3.5
  severity: high
  message: "{site_name}振动{value}"
  message_en: "{device} vibration {value}"
  source: "test rule [U]"
- id: vibration-typo
  kind: threshold
  domain: structure
  device_type: structure_monitor
  selector: {devices: [st-001-nee]}
  metric: vibration
  op: ">"
  limit: 3.5
  severity: high
  message: "{site_name}振动{value}"
  message_en: "{device} vibration {value}"
  source: "test rule [U]"
"""


def test_a_rule_watching_no_device_is_named(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES, encoding="utf-8")
    result = CliRunner().invoke(cli, ["rules", "check", str(path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] is True
    assert report["warnings"] == ["rule vibration-typo matches no device of the registry"]
    result = CliRunner().invoke(cli, ["rules", "check", str(path)])
    assert result.exit_code == 0 and "warning: rule vibration-typo matches no device" in result.output
