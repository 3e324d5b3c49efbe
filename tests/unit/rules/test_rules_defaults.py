"""Every shipped rule fires on a hand-made reading sequence, and calm readings fire nothing."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from gulou.bench.rules_bench import CALM
from gulou.devices.registry import Registry
from gulou.rules.alerts import AlertTransition
from gulou.rules.engine import Engine
from gulou.rules.model import AnyRule, load_rules
from gulou.rules.targets import TargetVerdict
from tests.unit.rules.test_rules_engine import T0, at, reading

DEFAULT_RULES = load_rules()


def tilt_deg(ratio: float) -> float:
    """Inclination (degrees) about one axis that gives this tilt ratio."""
    return math.degrees(math.atan(ratio))


def hours(n: int, per_hour: int, **values: Any) -> list[tuple[float, dict[str, Any]]]:
    """``per_hour`` one-minute readings in each of ``n`` hours."""
    return [(h * 60 + m, values) for h in range(n) for m in range(per_hour)]


AIR, RIVER, DRINKING, BIN, POINT, LOT, HOUSE = (
    "aq-001", "wq-baima-01", "wq-minjiang-02", "bin-001-rec", "sort-001", "pk-001", "st-001-ne")
# rule id → (device, [(minutes after T0, values on top of the device's calm values)])
SEQUENCES: dict[str, tuple[str, list[tuple[float, dict[str, Any]]]]] = {
    # Hourly AQI: an hour of readings, then one 10 minutes (the lateness bound) past it closes the hour.
    "air-aqi-over-100": (AIR, [*hours(1, 60, pm25=100.0), (70, {})]),
    "air-aqi-over-150": (AIR, [*hours(1, 60, pm25=140.0), (70, {})]),
    "air-aqi-over-200": (AIR, [*hours(1, 60, pm25=200.0), (70, {})]),
    "air-aqi-over-300": (AIR, [*hours(1, 45, pm25=300.0), (70, {})]),
    "air-pm25-24h-class2": (AIR, hours(20, 45, pm25=80.0)),
    "air-o3-8h-over-160": (AIR, hours(6, 45, o3=200.0)),
    "water-class-worse-than-target": (RIVER, [(m, {"nh3n": 2.5}) for m in (0, 5, 10)]),
    "water-drinking-source-worse-than-iii": (DRINKING, [(0, {"nh3n": 1.2})]),
    "water-do-below-2": (RIVER, [(0, {"do": 1.5})]),
    "water-black-odour-light": (RIVER, [(m, {"do": 1.0}) for m in (0, 5, 10)]),
    # Graded over 24 h of samples: 12 with DO severe (< 0.2) make DO severe in 12 of 13 (with the calm one).
    "water-black-odour-severe": (RIVER, [(m * 5, {"do": 0.1}) for m in range(12)]),
    "waste-bin-dispatch": (BIN, [(0, {"fill_level": 0.85})]),
    "waste-bin-overflow": (BIN, [(0, {"fill_level": 0.97})]),
    "waste-bin-fire-temperature": (BIN, [(0, {"temperature": 65.0})]),
    "waste-bin-fire-rise": (BIN, [(0, {"temperature": 22.0}), (5, {"temperature": 35.0})]),
    "waste-bin-odour-nh3": (BIN, [(0, {"nh3": 2.0})]),
    "waste-bin-odour-h2s": (BIN, [(0, {"h2s": 0.1})]),
    "waste-sorting-rate-daily": (POINT, [*((h * 60, {"inspected": 40, "correct": 30}) for h in range(12)),
                                         (24 * 60, {"inspected": 40, "correct": 40})]),
    "parking-tight": (LOT, [(0, {"occupied_spots": 185})]),
    "parking-full": (LOT, [(0, {"occupied_spots": 198})]),
    "structure-tilt-yellow": (HOUSE, [(0, {"tilt_x": tilt_deg(0.022), "tilt_y": 0.0})]),
    "structure-tilt-orange": (HOUSE, [(0, {"tilt_x": tilt_deg(0.026), "tilt_y": 0.0})]),
    "structure-tilt-red": (HOUSE, [(0, {"tilt_x": tilt_deg(0.0215), "tilt_y": tilt_deg(0.0215)})]),
    "structure-crack-width": (HOUSE, [(0, {"crack_width": 1.2})]),
    "structure-crack-growth": (HOUSE, [(0, {"crack_width": 0.3}), (360, {"crack_width": 0.4})]),
    "structure-settlement-rate": (HOUSE, [(0, {"settlement": -1.0}), (360, {"settlement": -2.0})]),
    # 0.2 mm a day for 51 days: 6 mm/month over the two months of daily means.
    "structure-settlement-monthly": (HOUSE, [(d * 1440, {"settlement": -1.0 - 0.2 * d}) for d in range(51)]),
    "structure-vibration": (HOUSE, [(0, {"vibration": 5.0})]),
}
# Target rules: one target of each, judged at risk by the report job.
TARGETS = {"plan-target-air": "good_day_ratio", "plan-target-water": "inner_river_compliance",
           "plan-target-waste": "sorting_correct_rate"}
OFFLINE = {"device-offline-water": RIVER, "device-offline-air": AIR, "device-offline-waste": BIN,
           "device-offline-parking": LOT, "device-offline-structure": HOUSE}


def _run(registry: Registry, rules: list[AnyRule], device_id: str,
         sequence: list[tuple[float, dict[str, Any]]]) -> list[AlertTransition]:
    engine = Engine(rules, registry)
    device = registry.get(device_id)
    assert device is not None
    out = engine.process(reading(device, at(-10), **CALM[device.type]))
    for minutes, values in sequence:
        out += engine.process(reading(device, at(minutes), **{**CALM[device.type], **values}))
    return out


def test_every_default_rule_has_a_sequence() -> None:
    assert {r.id for r in DEFAULT_RULES} == set(SEQUENCES) | set(OFFLINE) | set(TARGETS)


@pytest.mark.parametrize("rule_id", sorted(SEQUENCES))
def test_default_rule_fires(registry: Registry, rule_id: str) -> None:
    device_id, sequence = SEQUENCES[rule_id]
    fired = [t for t in _run(registry, DEFAULT_RULES, device_id, sequence) if t.event == "firing"]
    assert rule_id in {t.alert.rule_id for t in fired}
    alert = next(t.alert for t in fired if t.alert.rule_id == rule_id)
    assert alert.message and alert.message_en and "{" not in alert.message + alert.message_en
    assert alert.value is not None and alert.limit is not None


@pytest.mark.parametrize("rule_id", sorted(TARGETS))
def test_default_target_rule_fires_at_risk_and_resolves_on_track(registry: Registry, rule_id: str) -> None:
    engine = Engine(DEFAULT_RULES, registry)
    at_risk = TargetVerdict(TARGETS[rule_id], "某目标", 2026, "at_risk", "min", 0.9, 0.95, 0.9, "90.0%", "95%",
                            "90.0%")
    fired = engine.judge_targets([at_risk], T0)
    assert [(t.event, t.alert.rule_id, t.alert.device_id) for t in fired] == [("firing", rule_id, TARGETS[rule_id])]
    assert fired[0].alert.message == "规划目标「某目标」存在风险：累计 90.0%，年末预计 90.0%，目标≥ 95%"
    assert engine.judge_targets([at_risk], T0 + timedelta(days=1)) == []
    back = engine.judge_targets([replace(at_risk, status="on_track", actual=0.96)], T0 + timedelta(days=2))
    assert [(t.event, t.alert.rule_id) for t in back] == [("resolved", rule_id)]


@pytest.mark.parametrize("rule_id", sorted(OFFLINE))
def test_default_offline_rule_fires(registry: Registry, rule_id: str) -> None:
    device = registry.get(OFFLINE[rule_id])
    assert device is not None
    engine = Engine(DEFAULT_RULES, registry)
    engine.process(reading(device, T0, **CALM[device.type]))
    assert engine.tick(T0 + timedelta(seconds=device.interval_s)) == []
    fired = engine.tick(T0 + timedelta(seconds=device.interval_s * 3 + 1))
    assert [t.alert.rule_id for t in fired] == [rule_id]
    assert fired[0].alert.message.endswith("离线")


def test_calm_readings_fire_nothing(registry: Registry) -> None:
    engine = Engine(DEFAULT_RULES, registry)
    out: list[AlertTransition] = []
    for device in registry:
        for minutes in (0, 10, 20):
            out += engine.process(reading(device, at(minutes), **CALM[device.type]))
    assert [(t.alert.rule_id, t.alert.device_id) for t in out] == []


def test_tilt_limit_depends_on_storeys(registry: Registry) -> None:
    low, tall = registry.get("st-001-ne"), registry.get("st-005-ne")
    assert low is not None and tall is not None and low.site.storeys == 2 and tall.site.storeys == 3
    engine = Engine([r for r in DEFAULT_RULES if r.id.startswith("structure-tilt")], registry)
    tilt = {"tilt_x": tilt_deg(0.021), "tilt_y": 0.0}
    low_ids = {t.alert.rule_id for t in engine.process(reading(low, T0, **tilt))}
    tall_alerts = engine.process(reading(tall, T0, **tilt))
    assert low_ids == {"structure-tilt-yellow"}  # 0.021 ≥ 70 % of 0.03
    assert {t.alert.rule_id for t in tall_alerts} == {"structure-tilt-yellow", "structure-tilt-orange",
                                                      "structure-tilt-red"}
    red = next(t.alert for t in tall_alerts if t.alert.rule_id == "structure-tilt-red")
    assert red.limit == pytest.approx(0.02) and red.exceedance == pytest.approx(0.05, abs=1e-3)


def test_water_class_uses_section_target(registry: Registry) -> None:
    engine = Engine([r for r in DEFAULT_RULES if r.id == "water-class-worse-than-target"], registry)
    river, drinking = registry.get(RIVER), registry.get(DRINKING)
    assert river is not None and drinking is not None
    iv = {**CALM["water_station"], "nh3n": 1.2}  # class IV: meets the inner river's IV, not the source's III
    # Held for three consecutive readings before it fires.
    for minutes in (0, 5, 10):
        assert engine.process(reading(river, at(minutes), **iv)) == []
    assert engine.process(reading(drinking, at(0), **iv)) == []
    assert engine.process(reading(drinking, at(5), **iv)) == []
    fired = engine.process(reading(drinking, at(10), **iv))
    assert len(fired) == 1
    assert "劣于目标III类" in fired[0].alert.message and "IV类" in fired[0].alert.message
