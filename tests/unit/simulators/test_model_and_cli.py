"""Duration parsing, time formatting and the command's argument errors (no broker needed)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from gulou.cli import cli
from gulou.simulators.model import default_start, parse_duration, rfc3339


@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 90), (90, 90), ("90s", 90), ("30m", 1800), ("2h", 7200), ("1d", 86400), ("1h30m", 5400),
    ("1.5h", 5400), (" 2h 5m ", 7500),
])
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "2x", "-5", "h", "", "1h soon"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_times_are_local_rfc3339_and_start_rounds_down_to_the_minute() -> None:
    now = datetime(2026, 11, 26, 7, 49, 38, 123, tzinfo=UTC)
    assert rfc3339(now) == "2026-11-26T15:49:38+08:00"
    assert rfc3339(default_start(now)) == "2026-11-26T15:49:00+08:00"


@pytest.mark.parametrize(("args", "message"), [
    (["--fault-rate", "typo=0.1"], "unknown fault kind 'typo'"),
    (["--fault-rate", "malformed"], "expected KIND=RATE"),
    (["--fault-rate", "late=0.7", "--fault-rate", "duplicate=0.7"], "more than 1"),
    (["--start", "yesterday"], "is not RFC 3339"),
    (["--sim-duration", "forever"], "is not a duration"),
    (["--speed", "-1"], "--speed"),
])
def test_bad_arguments_are_usage_errors(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["simulate", *args])
    assert result.exit_code == 2 and message in result.output, result.output


def test_scenario_errors_name_the_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("incidents:\n  - {kind: lot_full, target: nowhere, at: 1h, duration: 1h}\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["simulate", "--scenario", str(bad), "--broker", "mqtt://127.0.0.1:1"])
    assert result.exit_code == 1
    assert f"{bad}: incidents[0].target: 'nowhere' matches no parking_lot" in result.output
    missing = CliRunner().invoke(cli, ["simulate", "--scenario", "nope"])
    assert missing.exit_code == 1 and "no such scenario file" in missing.output


def test_unreachable_broker_is_a_clear_error() -> None:
    result = CliRunner().invoke(cli, ["simulate", "--broker", "mqtt://127.0.0.1:1", "--sim-duration", "60",
                                      "--speed", "0"])
    assert result.exit_code == 1
    assert "mqtt://127.0.0.1:1: cannot connect to the broker" in result.output
