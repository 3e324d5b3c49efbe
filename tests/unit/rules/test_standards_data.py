"""The standards data files: every figure sourced, [U] items marked, bad files named, loaded lazily once."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from gulou.rules.standards import StandardsDataError, air_limit, aqi, set_data_dir
from gulou.rules.standards.tables import gb3095, gb3838, hj633, structure_table

DATA = Path(__file__).parents[3] / "src/gulou/data/standards"


@pytest.fixture
def reset_data_dir() -> Iterator[None]:
    yield
    set_data_dir(None)


def test_every_source_line_has_a_confidence_mark() -> None:
    for path in DATA.glob("*.yaml"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "source:" in line and not line.lstrip().startswith("#"):
                assert any(m in line for m in ("[H]", "[M]", "[U]")), f"{path.name}:{number}"


@pytest.mark.parametrize(("pollutant", "period", "old", "new"), [
    ("pm25", "24h", 75, 60), ("pm25", "annual", 35, 30), ("pm10", "24h", 150, 120), ("pm10", "annual", 70, 60),
    ("so2", "1h", 500, 500), ("no2", "24h", 80, 80), ("co", "1h", 10, 10), ("o3", "8h", 160, 160)])
def test_class_ii_limits_by_date(pollutant: str, period: str, old: float, new: float) -> None:
    assert air_limit(pollutant, period, date(2026, 2, 28)).value == old
    assert air_limit(pollutant, period, date(2026, 3, 1)).value == new


def test_phase_2_pm25_tightens_and_the_rest_is_inherited_unconfirmed() -> None:
    assert air_limit("pm25", "24h", date(2031, 1, 1)).value == 50
    assert air_limit("pm25", "annual", date(2031, 1, 1)).value == 25
    assert air_limit("pm25", "24h", date(2031, 1, 1)).confidence == "M"
    phase2 = air_limit("pm10", "24h", date(2031, 1, 1))
    assert phase2.value == 120
    assert phase2.confidence == "U"
    assert "not confirmed" in phase2.source
    assert gb3095().rule_sets[-1].since == date(2031, 1, 1)
    assert "[U]" in gb3095().rule_sets[-1].source
    with pytest.raises(ValueError, match="no 'annual' limit"):
        air_limit("o3", "annual", date(2026, 3, 1))


def test_unconfirmed_items_are_marked() -> None:
    assert all(t.confidence == "U" for t in structure_table().tiers.values())
    assert gb3838().indicators["do"].limits == [7.5, 6, 5, 3, 2]
    assert hj633().methods["HJ 633-2026"].columns["pm25_24h"].breakpoints[2] == 60


def test_phase_2_is_configurable(tmp_path: Path, reset_data_dir: None) -> None:
    text = (DATA / "gb3095.yaml").read_text(encoding="utf-8")
    # A confirmed phase 2 PM10 24 h limit of 100 replaces the inherited one.
    text = text.replace("    inherits: GB 3095-2026 transition\n",
                        "    inherits: GB 3095-2026 transition\n"
                        "    pm10: {24h: {value: 100, source: \"GB 3095-2026 phase 2 [H]\"}}\n")
    (tmp_path / "gb3095.yaml").write_text(text, encoding="utf-8")
    set_data_dir(tmp_path)
    assert air_limit("pm10", "24h", date(2031, 1, 1)).value == 100
    assert air_limit("pm10", "24h", date(2030, 12, 31)).value == 120
    assert air_limit("pm25", "24h", date(2031, 1, 1)).value == 50
    assert air_limit("pm25", "24h", date(2030, 12, 31)).value == 60


def test_a_bad_file_is_named(tmp_path: Path, reset_data_dir: None) -> None:
    text = (DATA / "hj633.yaml").read_text(encoding="utf-8")
    (tmp_path / "hj633.yaml").write_text(text.replace("[0, 35, 60, 115", "[0, 35, 30, 115"), encoding="utf-8")
    set_data_dir(tmp_path)
    with pytest.raises(StandardsDataError, match=r"(?s)hj633\.yaml.*strictly ascending"):
        aqi({"pm25": 10}, date(2026, 6, 1), "daily")


def test_a_number_without_a_source_is_refused(tmp_path: Path, reset_data_dir: None) -> None:
    text = (DATA / "structure.yaml").read_text(encoding="utf-8")
    (tmp_path / "structure.yaml").write_text(
        text.replace('source: "JGJ 125-2016: overall tilt dangerous above 3 % for 1-2 storeys [H]"',
                     'source: "JGJ 125-2016"'), encoding="utf-8")
    set_data_dir(tmp_path)
    with pytest.raises(StandardsDataError, match=r"(?s)structure\.yaml.*confidence mark"):
        structure_table()


def test_nothing_is_loaded_at_import() -> None:
    code = ("import gulou.cli, gulou.rules.standards as s, gulou.rules.standards.tables as t; "
            "print(t.hj633.cache_info().currsize + t.gb3095.cache_info().currsize + t.gb3838.cache_info().currsize)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"


def test_files_are_loaded_once(reset_data_dir: None) -> None:
    set_data_dir(None)
    assert hj633.cache_info().currsize == 0
    aqi({"pm25": 10}, date(2026, 6, 1), "daily")
    aqi({"pm25": 20}, date(2026, 6, 2), "daily")
    assert hj633.cache_info().misses == 1
    assert hj633.cache_info().hits >= 1
