"""The shipped rule files repeat figures of the standards tables; these tests fail when the two drift apart."""

from __future__ import annotations

from datetime import date

import pytest

from gulou.rules.model import AnyRule, Limit, ThresholdRule, WindowRule, load_rules
from gulou.rules.standards.tables import black_odour_table, gb3095, gb3838, hj633, structure_table


@pytest.fixture(scope="module")
def rules() -> dict[str, AnyRule]:
    return {rule.id: rule for rule in load_rules()}


def _limit(rules: dict[str, AnyRule], rule_id: str) -> Limit:
    limit = getattr(rules[rule_id], "limit", None)
    assert isinstance(limit, Limit), rule_id
    return limit


def _fixed(rules: dict[str, AnyRule], rule_id: str) -> float:
    limit = _limit(rules, rule_id)
    assert limit.value is not None, rule_id
    return limit.value * limit.factor


def _gb3095_by_date(pollutant: str, period: str) -> list[tuple[date | None, float]]:
    """The limit of each rule set, a repeated value folded into the earlier entry."""
    out: list[tuple[date | None, float]] = []
    for rule_set in gb3095().rule_sets:
        value = gb3095().limits(rule_set.limits)[pollutant][period].value
        if not out or out[-1][1] != value:
            out.append((rule_set.since, value))
    return out


def test_aqi_rules_sit_on_category_edges(rules: dict[str, AnyRule]) -> None:
    edges = {c.max_aqi for c in hj633().categories if c.max_aqi is not None}
    aqi_rules = [r for r in rules.values() if isinstance(r, ThresholdRule) and r.metric == "aqi"]
    assert aqi_rules
    for rule in aqi_rules:
        assert rule.limit.value in edges, rule.id


def test_pm25_24h_rule_follows_every_rule_set(rules: dict[str, AnyRule]) -> None:
    limit = _limit(rules, "air-pm25-24h-class2")
    assert limit.by_date is not None
    assert [(d.since, d.value) for d in limit.by_date] == _gb3095_by_date("pm25", "24h")


def test_o3_8h_rule_is_the_gb3095_8h_limit(rules: dict[str, AnyRule]) -> None:
    (only,) = _gb3095_by_date("o3", "8h")
    assert _fixed(rules, "air-o3-8h-over-160") == only[1]


def test_window_rules_use_the_validity_minima(rules: dict[str, AnyRule]) -> None:
    validity = gb3095().validity
    need = {86400: validity["daily_min_hours"].value, 28800: validity["o3_8h_min_hours"].value}
    windows = [r for r in rules.values() if isinstance(r, WindowRule) and r.bucket_s == 3600]
    assert windows
    for rule in windows:
        # A valid hourly value needs hourly_min_minutes of sampling: the bucket's covered share.
        assert rule.bucket_min_fraction * 3600 / 60 == pytest.approx(validity["hourly_min_minutes"].value)
        assert rule.min_count == need[int(rule.window_s)], rule.id


def test_tilt_tiers_are_the_structure_tiers(rules: dict[str, AnyRule]) -> None:
    tiers = structure_table().tiers
    for tier in ("yellow", "orange", "red"):
        limit = _limit(rules, f"structure-tilt-{tier}")
        assert limit.site == "tilt_limit"
        assert limit.factor == tiers[tier].value, tier


def test_structure_limits_are_the_component_limits(rules: dict[str, AnyRule]) -> None:
    table = structure_table()
    # The crack rule takes each building's value by its structure type (concrete 0.5, masonry 1.0).
    crack = rules["structure-crack-width"]
    assert isinstance(crack, ThresholdRule) and crack.limit.site == "crack_limit" and crack.limit.factor == 1
    assert _fixed(rules, "structure-settlement-rate") == table.component_limits["settlement_mm_per_day"].value
    assert _fixed(rules, "structure-settlement-monthly") == table.component_limits["settlement_mm_per_month"].value
    assert _fixed(rules, "structure-vibration") == table.component_limits["vibration_ppv_mm_s"].value


def test_water_do_rule_is_class_v_and_the_black_odour_bound(rules: dict[str, AnyRule]) -> None:
    limits = gb3838().indicators["do"].limits
    assert limits is not None
    assert _fixed(rules, "water-do-below-2") == limits[-1] == black_odour_table().indicators["do"].light_from


def test_derived_inputs_are_the_rated_items_a_station_measures() -> None:
    from gulou.devices.catalog import CATALOG
    from gulou.rules.model import DERIVED

    measured = {m.name for m in CATALOG["water_station"].metrics}
    assert DERIVED["water_class"] == tuple(n for n in gb3838().indicators if n in measured)
    assert DERIVED["black_odour_level"] == tuple(black_odour_table().indicators)
