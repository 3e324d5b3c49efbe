"""Black-odour levels per indicator (2015 guide Table 1), shallow water and the per-point aggregation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gulou.rules.standards import black_odour, black_odour_point, set_data_dir
from gulou.rules.standards.tables import black_odour_table

CLEAN = {"transparency": 40.0, "do": 5.0, "orp": 100.0, "nh3n": 1.0}


@pytest.mark.parametrize(("metric", "value", "level"), [
    # transparency: >= 25 none, 10..25 light, < 10 severe
    ("transparency", 25, "none"), ("transparency", 24.9, "light"), ("transparency", 10, "light"),
    ("transparency", 9.9, "severe"),
    # DO: >= 2.0 none, 0.2..2.0 light, < 0.2 severe
    ("do", 2.0, "none"), ("do", 1.99, "light"), ("do", 0.2, "light"), ("do", 0.19, "severe"),
    # ORP: >= 50 none, -200..50 light, < -200 severe
    ("orp", 50, "none"), ("orp", 49, "light"), ("orp", -200, "light"), ("orp", -201, "severe"),
    # NH3-N: <= 8.0 none, 8.0..15 light, > 15 severe
    ("nh3n", 8.0, "none"), ("nh3n", 8.1, "light"), ("nh3n", 15, "light"), ("nh3n", 15.1, "severe"),
])
def test_each_indicator_band(metric: str, value: float, level: str) -> None:
    result = black_odour({metric: value})
    assert result.indicators == {metric: level}
    assert result.level == level


def test_sample_level_is_the_worst_indicator() -> None:
    result = black_odour({"transparency": 30, "do": 1.0, "orp": -250, "nh3n": 5})
    assert result.indicators == {"transparency": "none", "do": "light", "orp": "severe", "nh3n": "none"}
    assert result.level == "severe"
    assert black_odour(CLEAN).level == "none"


@pytest.mark.parametrize(("depth", "transparency", "level"), [
    (20, 8.0, "none"),     # bound 0.4*20 = 8 cm: 8 is not below it
    (20, 7.9, "severe"),   # below both (equal) bounds of 8 cm
    (24, 9.6, "none"),     # bound 0.4*24 = 9.6 cm
    (24, 9.5, "severe"),
    (25, 24, "light"),     # 25 cm is not shallow: normal 25/10 bounds
    (30, 9.9, "severe"),
    (None, 20, "light"),
])
def test_shallow_water_transparency(depth: float | None, transparency: float, level: str) -> None:
    result = black_odour({"transparency": transparency}, depth_cm=depth)
    assert result.indicators["transparency"] == level


def test_shallow_bounds_reported() -> None:
    assert black_odour({"transparency": 5}, depth_cm=10).transparency_bounds_cm == (4.0, 4.0)  # 0.4*10
    assert black_odour({"transparency": 5}).transparency_bounds_cm == (25.0, 10.0)


def _samples(severe: dict[str, int], total: int, light_do: int = 0) -> list[dict[str, float]]:
    """total samples; the first severe[name] samples have that indicator severe."""
    out = []
    for i in range(total):
        sample = dict(CLEAN)
        if i < severe.get("do", 0):
            sample["do"] = 0.1
        elif i < light_do:
            sample["do"] = 1.0
        if i < severe.get("orp", 0):
            sample["orp"] = -300
        if i < severe.get("nh3n", 0):
            sample["nh3n"] = 20
        out.append(sample)
    return out


def test_point_severe_when_one_indicator_has_60_percent_severe() -> None:
    result = black_odour_point(_samples({"do": 3}, 5))  # 3/5 = 60 %
    assert result.level == "severe"
    assert result.severe_share["do"] == pytest.approx(0.6)
    assert result.samples == 5
    assert black_odour_point(_samples({"do": 5}, 10)).level == "light"  # 5/10 = 50 %, one indicator


def test_point_severe_when_two_indicators_have_30_percent_severe() -> None:
    assert black_odour_point(_samples({"do": 3, "orp": 3}, 10)).level == "severe"  # 30 % and 30 %
    assert black_odour_point(_samples({"do": 2, "orp": 3}, 10)).level == "light"   # 20 % and 30 %
    assert black_odour_point(_samples({"do": 2, "orp": 2, "nh3n": 4}, 10)).level == "light"  # one at 40 %


def test_point_light_and_none() -> None:
    assert black_odour_point(_samples({}, 6, light_do=1)).level == "light"  # one light sample
    assert black_odour_point(_samples({}, 6)).level == "none"
    with pytest.raises(ValueError, match="at least one sample"):
        black_odour_point([])


def test_point_accepts_results_and_depth() -> None:
    shallow = [{"transparency": 7.0}, {"transparency": 9.0}]  # depth 20 -> bound 8: severe, none
    assert black_odour_point(shallow, depth_cm=20).severe_share == {"transparency": 0.5}
    results = [black_odour({"do": 0.1}), black_odour({"do": 0.1}), black_odour({"do": 3})]
    assert black_odour_point(results).level == "severe"  # 2/3 >= 60 %


@pytest.fixture
def reset_data_dir() -> Iterator[None]:
    yield
    set_data_dir(None)


def test_aggregation_thresholds_come_from_the_data_file(tmp_path: Path, reset_data_dir: None) -> None:
    assert "[U]" in black_odour_table().aggregation.source
    text = (Path(__file__).parents[3] / "src/gulou/data/standards/black_odour.yaml").read_text(encoding="utf-8")
    (tmp_path / "black_odour.yaml").write_text(text.replace("single: 0.6", "single: 0.5"), encoding="utf-8")
    samples = _samples({"do": 5}, 10)  # 50 %
    assert black_odour_point(samples).level == "light"
    set_data_dir(tmp_path)
    assert black_odour_point(samples).level == "severe"


def test_names() -> None:
    assert black_odour({"do": 3, "ph": 7, "turbidity": 10}).unrated == ["ph", "turbidity"]
    with pytest.raises(ValueError, match="unknown black-odour metric 'cod'"):
        black_odour({"cod": 3})
    with pytest.raises(ValueError, match="must not be negative"):
        black_odour({"do": -1})
    assert black_odour({"orp": -50}).level == "light"  # ORP may be negative
    with pytest.raises(ValueError, match="no black-odour indicator"):
        black_odour({})
