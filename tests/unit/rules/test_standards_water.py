"""GB 3838-2002 water class: boundaries of every Table 1 item, worst indicator, exceedance, status, target."""

from __future__ import annotations

import pytest

from gulou.rules.standards import water_class

# (metric, value, expected class) at and just past each class limit of GB 3838-2002 Table 1 (rivers).
BOUNDARIES = [
    # DO is a lower bound: >= 7.5 I, >= 6 II, >= 5 III, >= 3 IV, >= 2 V.
    ("do", 7.5, "I"), ("do", 7.49, "II"), ("do", 6, "II"), ("do", 5.99, "III"), ("do", 5, "III"),
    ("do", 4.99, "IV"), ("do", 3, "IV"), ("do", 2.99, "V"), ("do", 2, "V"), ("do", 1.99, "劣V"), ("do", 9, "I"),
    # CODMn <= 2, 4, 6, 10, 15
    ("codmn", 2, "I"), ("codmn", 2.01, "II"), ("codmn", 4, "II"), ("codmn", 4.01, "III"), ("codmn", 6, "III"),
    ("codmn", 6.01, "IV"), ("codmn", 10, "IV"), ("codmn", 10.01, "V"), ("codmn", 15, "V"), ("codmn", 15.01, "劣V"),
    # COD <= 15, 15, 20, 30, 40 (I and II share 15)
    ("cod", 15, "I"), ("cod", 15.1, "III"), ("cod", 20, "III"), ("cod", 20.1, "IV"), ("cod", 30, "IV"),
    ("cod", 30.1, "V"), ("cod", 40, "V"), ("cod", 40.1, "劣V"),
    # BOD5 <= 3, 3, 4, 6, 10
    ("bod5", 3, "I"), ("bod5", 3.1, "III"), ("bod5", 4, "III"), ("bod5", 4.1, "IV"), ("bod5", 6, "IV"),
    ("bod5", 6.1, "V"), ("bod5", 10, "V"), ("bod5", 10.1, "劣V"),
    # NH3-N <= 0.15, 0.5, 1.0, 1.5, 2.0
    ("nh3n", 0.15, "I"), ("nh3n", 0.16, "II"), ("nh3n", 0.5, "II"), ("nh3n", 0.51, "III"), ("nh3n", 1.0, "III"),
    ("nh3n", 1.01, "IV"), ("nh3n", 1.5, "IV"), ("nh3n", 1.51, "V"), ("nh3n", 2.0, "V"), ("nh3n", 2.01, "劣V"),
    # TP rivers <= 0.02, 0.1, 0.2, 0.3, 0.4
    ("tp", 0.02, "I"), ("tp", 0.021, "II"), ("tp", 0.1, "II"), ("tp", 0.11, "III"), ("tp", 0.2, "III"),
    ("tp", 0.21, "IV"), ("tp", 0.3, "IV"), ("tp", 0.31, "V"), ("tp", 0.4, "V"), ("tp", 0.41, "劣V"),
    # pH 6-9 meets every class; outside is 劣V
    ("ph", 6, "I"), ("ph", 9, "I"), ("ph", 7.5, "I"), ("ph", 5.9, "劣V"), ("ph", 9.1, "劣V"),
]

LAKE_BOUNDARIES = [
    # TP lakes <= 0.01, 0.025, 0.05, 0.1, 0.2
    ("tp", 0.01, "I"), ("tp", 0.011, "II"), ("tp", 0.025, "II"), ("tp", 0.026, "III"), ("tp", 0.05, "III"),
    ("tp", 0.051, "IV"), ("tp", 0.1, "IV"), ("tp", 0.11, "V"), ("tp", 0.2, "V"), ("tp", 0.21, "劣V"),
    # TN lakes <= 0.2, 0.5, 1.0, 1.5, 2.0
    ("tn", 0.2, "I"), ("tn", 0.21, "II"), ("tn", 0.5, "II"), ("tn", 0.51, "III"), ("tn", 1.0, "III"),
    ("tn", 1.01, "IV"), ("tn", 1.5, "IV"), ("tn", 1.51, "V"), ("tn", 2.0, "V"), ("tn", 2.01, "劣V"),
]


@pytest.mark.parametrize(("metric", "value", "klass"), BOUNDARIES)
def test_river_class_boundaries(metric: str, value: float, klass: str) -> None:
    result = water_class({metric: value})
    assert result.per_indicator == {metric: klass}
    assert result.klass == klass


@pytest.mark.parametrize(("metric", "value", "klass"), LAKE_BOUNDARIES)
def test_lake_class_boundaries(metric: str, value: float, klass: str) -> None:
    assert water_class({metric: value}, lake=True).klass == klass


def test_tn_does_not_set_a_river_class() -> None:
    result = water_class({"tn": 5.0, "nh3n": 0.4})
    assert result.klass == "II"  # nh3n 0.4 <= 0.5
    assert "tn" not in result.per_indicator
    assert result.unrated == ["tn"]
    # The same sample in a lake: TN 5.0 > 2.0 is 劣V.
    assert water_class({"tn": 5.0, "nh3n": 0.4}, lake=True).klass == "劣V"


def test_river_and_lake_tp_columns_differ() -> None:
    assert water_class({"tp": 0.05}).klass == "II"            # river: 0.05 <= 0.1
    assert water_class({"tp": 0.05}, lake=True).klass == "III"  # lake: 0.025 < 0.05 <= 0.05


def test_sample_class_is_the_worst_indicator_with_ties() -> None:
    # ph I, do 4 -> IV (3 <= 4 < 5), codmn 8 -> IV (6 < 8 <= 10), nh3n 0.8 -> III, tp 0.15 -> III
    result = water_class({"ph": 7.2, "do": 4, "codmn": 8, "nh3n": 0.8, "tp": 0.15})
    assert result.klass == "IV"
    assert result.worst == ["do", "codmn"]
    assert result.status == "轻度污染"


def test_worse_than_v_is_inferior_v() -> None:
    # nh3n 3.0 > 2.0 (V) -> 劣V even though every other indicator is class I
    result = water_class({"ph": 7, "do": 8, "codmn": 1, "nh3n": 3.0, "tp": 0.01})
    assert result.klass == "劣V"
    assert result.worst == ["nh3n"]
    assert result.status == "重度污染"


@pytest.mark.parametrize(("values", "klass", "status"), [
    ({"nh3n": 0.1}, "I", "优"), ({"nh3n": 0.3}, "II", "优"), ({"nh3n": 0.8}, "III", "良好"),
    ({"nh3n": 1.2}, "IV", "轻度污染"), ({"nh3n": 1.8}, "V", "中度污染"), ({"nh3n": 2.5}, "劣V", "重度污染")])
def test_status_words(values: dict[str, float], klass: str, status: str) -> None:
    result = water_class(values)
    assert (result.klass, result.status) == (klass, status)


def test_exceedance_multiples_against_the_target() -> None:
    values = {"ph": 7, "do": 4, "codmn": 12, "nh3n": 1.5, "tp": 0.5}
    # target III: do (5-4)/5 = 0.2; codmn (12-6)/6 = 1.0; nh3n (1.5-1.0)/1.0 = 0.5; tp (0.5-0.2)/0.2 = 1.5
    r3 = water_class(values, target="III")
    assert r3.exceedance == pytest.approx({"do": 0.2, "codmn": 1.0, "nh3n": 0.5, "tp": 1.5})
    assert r3.exceedance_target == "III"
    # target IV: do 4 >= 3 meets; codmn (12-10)/10 = 0.2; nh3n 1.5 <= 1.5 meets; tp (0.5-0.3)/0.3 = 0.6667
    r4 = water_class(values, target="IV")
    assert r4.exceedance == pytest.approx({"codmn": 0.2, "tp": 2 / 3})
    # target V, DO 1.5: (2-1.5)/2 = 0.25
    assert water_class({"do": 1.5}, target="V").exceedance == pytest.approx({"do": 0.25})


def test_exceedance_defaults_to_class_iii_and_skips_ph() -> None:
    result = water_class({"ph": 9.5, "nh3n": 1.2})
    assert result.klass == "劣V"
    assert result.exceedance == pytest.approx({"nh3n": 0.2})  # (1.2-1.0)/1.0; pH has no multiple
    assert result.target is None and result.meets_target is None


def test_meets_target() -> None:
    assert water_class({"nh3n": 1.5}, target="IV").meets_target is True   # IV vs IV
    assert water_class({"nh3n": 1.51}, target="IV").meets_target is False  # V vs IV
    assert water_class({"nh3n": 0.1}, target="iv").meets_target is True     # case-insensitive target
    assert water_class({"ph": 5.9}, target="V").meets_target is False


def test_names() -> None:
    # Contract metrics without a GB 3838 limit are accepted and left out.
    result = water_class({"nh3n": 0.4, "turbidity": 30, "transparency": 40, "orp": -50, "temperature": 20,
                          "conductivity": 500})
    assert result.per_indicator == {"nh3n": "II"}
    assert result.unrated == ["turbidity", "transparency", "orp", "temperature", "conductivity"]
    with pytest.raises(ValueError, match="unknown water metric 'nitrate'"):
        water_class({"nitrate": 1.0})
    with pytest.raises(ValueError, match="must not be negative"):
        water_class({"nh3n": -0.1})
    with pytest.raises(ValueError, match="no GB 3838 indicator"):
        water_class({"turbidity": 3})
    with pytest.raises(ValueError, match="target"):
        water_class({"nh3n": 0.1}, target="劣V")


def test_water_body_picks_the_column() -> None:
    # TP 0.2: river column III (0.1 < 0.2 <= 0.2), lake column V (0.1 < 0.2 <= 0.2): four times stricter.
    assert water_class({"tp": 0.2}, water_body="river").klass == "III"
    assert water_class({"tp": 0.2}, water_body="lake").klass == "V"
    assert water_class({"tp": 0.2}, water_body="lake").standard.endswith("(lakes and reservoirs)")
    assert water_class({"tp": 0.2}, water_body="lake", lake=True).klass == "V"
    with pytest.raises(ValueError, match="water_body must be one of river, lake"):
        water_class({"tp": 0.2}, water_body="sea")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="contradicts"):
        water_class({"tp": 0.2}, water_body="river", lake=True)
