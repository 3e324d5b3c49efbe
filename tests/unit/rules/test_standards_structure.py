"""Building safety: tilt ratio from two axes, JGJ 125 tilt limits, warning tiers, crack/settlement rates."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from gulou.rules.standards import component_limit, rate_per_day, tilt_limit, tilt_ratio, tilt_tier
from gulou.rules.standards.structure import crack_limit

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=timezone(timedelta(hours=8)))


def test_tilt_ratio_single_axis_is_tan() -> None:
    assert tilt_ratio(0, 0) == 0.0
    assert tilt_ratio(1, 0) == pytest.approx(0.017455064928217585, rel=1e-12)  # tan 1°
    assert tilt_ratio(0, -1) == pytest.approx(0.017455064928217585, rel=1e-12)
    assert tilt_ratio(45, 0) == pytest.approx(1.0, rel=1e-12)


def test_tilt_ratio_combines_the_axes() -> None:
    # tan 3° = 0.0524077793, tan 4° = 0.0699268119; sqrt(0.0027465753 + 0.0048897590) = sqrt(0.0076363344)
    # = 0.0873861222
    assert tilt_ratio(3, 4) == pytest.approx(0.0873861222, rel=1e-8)
    # tan 1° twice: sqrt(2) * 0.0174550649 = 0.0246851896
    assert tilt_ratio(1, 1) == pytest.approx(0.0246851896, rel=1e-8)


@pytest.mark.parametrize(("storeys", "limit"), [(1, 0.03), (2, 0.03), (3, 0.02), (6, 0.02), (30, 0.02)])
def test_tilt_limit(storeys: int, limit: float) -> None:
    assert tilt_limit(storeys) == limit


def test_tilt_limit_needs_a_positive_storey_count() -> None:
    with pytest.raises(ValueError, match="storeys"):
        tilt_limit(0)


@pytest.mark.parametrize(("ratio", "tier"), [
    # 2 storeys, limit 0.03: yellow 0.021 (70 %), orange 0.0255 (85 %), red 0.03
    (0.0, "none"), (0.0209, "none"), (0.021, "yellow"), (0.0254, "yellow"), (0.0255, "orange"),
    (0.0299, "orange"), (0.03, "red"), (0.05, "red"),
])
def test_tiers_for_two_storeys(ratio: float, tier: str) -> None:
    assert tilt_tier(ratio, 2) == tier


@pytest.mark.parametrize(("ratio", "tier"), [
    # 6 storeys, limit 0.02: yellow 0.014 (70 %), orange 0.017 (85 %), red 0.02
    (0.0139, "none"), (0.014, "yellow"), (0.0169, "yellow"), (0.017, "orange"), (0.0199, "orange"),
    (0.02, "red"), (0.021, "red"),
])
def test_tiers_for_six_storeys(ratio: float, tier: str) -> None:
    assert tilt_tier(ratio, 6) == tier


def test_tier_from_measured_angles() -> None:
    # tilt_ratio(1, 1) = 0.02469: 2 storeys 0.02469/0.03 = 82 % -> yellow; 6 storeys 123 % -> red
    assert tilt_tier(tilt_ratio(1, 1), 2) == "yellow"
    assert tilt_tier(tilt_ratio(1, 1), 6) == "red"


def test_rate_per_day() -> None:
    # 0 mm then 4 mm two days later: 2 mm/day
    assert rate_per_day([(T0, 0.0), (T0 + timedelta(days=2), 4.0)]) == pytest.approx(2.0)
    # days 0, 1, 2 with 0, 1, 5: slope = ((-1)(-2) + 0 + (1)(3)) / ((-1)^2 + 0 + 1^2) = 5/2
    assert rate_per_day([(T0, 0.0), (T0 + timedelta(days=1), 1.0), (T0 + timedelta(days=2), 5.0)]) == \
        pytest.approx(2.5)
    # 1 mm in 12 h: 2 mm/day; order does not matter
    assert rate_per_day([(T0 + timedelta(hours=12), 1.0), (T0, 0.0)]) == pytest.approx(2.0)
    # falling values give a negative rate: -3 mm over 3 days
    assert rate_per_day([(T0, 10.0), (T0 + timedelta(days=3), 7.0)]) == pytest.approx(-1.0)


def test_rate_per_day_needs_two_times() -> None:
    assert rate_per_day([]) is None
    assert rate_per_day([(T0, 1.0)]) is None
    assert rate_per_day([(T0, 1.0), (T0, 2.0)]) is None  # zero time span
    assert rate_per_day([(T0, 1.0), (T0 + timedelta(days=1), None)]) is None  # None values are skipped


def test_component_limits_are_marked_unconfirmed() -> None:
    limit = component_limit("settlement_mm_per_day")
    assert limit.value == 2.0
    assert limit.confidence == "U"
    with pytest.raises(ValueError, match="unknown component limit"):
        component_limit("roof")


@pytest.mark.parametrize(("structure_type", "limit"),
                         [("concrete", 0.5), ("masonry", 1.0), ("brick-wood", 1.0), ("timber", 1.0)])
def test_crack_limit_by_structure_type(structure_type: str, limit: float) -> None:
    sourced = crack_limit(structure_type)
    assert sourced.value == limit
    assert sourced.unit == "mm"
    assert "JGJ 125-2016" in sourced.source
    assert sourced.confidence == "U"


def test_crack_limit_of_an_unknown_structure_type() -> None:
    with pytest.raises(ValueError, match="no crack limit for structure type 'steel'"):
        crack_limit("steel")
