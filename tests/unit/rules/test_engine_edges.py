"""The rule model's small print and the engine's memory: every operator, selector and limit source, rule file
errors, listings, stored records as input, and a restart anywhere in a stream changing nothing."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gulou.devices.catalog import CATALOG
from gulou.devices.contract import Reading, StatusUpdate
from gulou.devices.registry import Device, Registry, load_registry
from gulou.rules.alerts import AlertTransition
from gulou.rules.engine import SNAPSHOT_VERSION, Engine
from gulou.rules.model import (
    AbsenceRule,
    Limit,
    RuleError,
    Selector,
    TargetRule,
    compare,
    load_rules,
    negate,
    parse_rules,
    rule_limit_text,
    site_target_class,
    summarise,
)
from gulou.tsdb.records import Point, StatusEvent

REGISTRY = load_registry()
RULES = load_rules()
T0 = datetime(2026, 5, 1, 2, 0, tzinfo=UTC)  # 10:00 Beijing time


def device(device_id: str) -> Device:
    found = REGISTRY.get(device_id)
    assert found is not None
    return found


# -- operators, selectors, limits ----------------------------------------------------------------------------

@pytest.mark.parametrize(("op", "below", "at", "above"), [
    (">", False, False, True), (">=", False, True, True), ("<", True, False, False), ("<=", True, True, False),
    ("==", False, True, False), ("!=", True, False, True),
])
def test_every_operator_and_its_negation(op: str, below: bool, at: bool, above: bool) -> None:
    assert (compare(op, 1.0, 2.0), compare(op, 2.0, 2.0), compare(op, 3.0, 2.0)) == (below, at, above)
    assert (compare(negate(op), 1.0, 2.0), compare(negate(op), 2.0, 2.0), compare(negate(op), 3.0, 2.0)) == \
        (not below, not at, not above)


def test_each_selector_criterion_narrows() -> None:
    river = device("wq-baima-01")
    drinking = device("wq-minjiang-02")
    bin_ = device("bin-001-rec")
    lot = device("pk-001")
    assert Selector().matches(river)
    assert Selector(devices=[river.id]).matches(river) and not Selector(devices=[drinking.id]).matches(river)
    assert Selector(sites=[river.site.id]).matches(river) and not Selector(sites=["elsewhere"]).matches(river)
    assert Selector(streets=[river.street]).matches(river) and not Selector(streets=["nowhere"]).matches(river)
    assert river.site.river is not None
    assert Selector(river=river.site.river).matches(river) and not Selector(river="no river").matches(river)
    assert bin_.category is not None
    assert Selector(category=bin_.category).matches(bin_) and not Selector(category="other").matches(bin_)
    assert lot.site.lot_type is not None
    assert Selector(lot_type=lot.site.lot_type).matches(lot) and not Selector(lot_type="other").matches(lot)
    assert Selector(drinking_source=True).matches(drinking) and not Selector(drinking_source=True).matches(river)
    assert Selector(drinking_source=False).matches(river)
    # All given criteria must hold.
    assert not Selector(devices=[river.id], streets=["nowhere"]).matches(river)


def test_limits_from_every_source() -> None:
    river, drinking, low, tall = (device("wq-baima-01"), device("wq-minjiang-02"), device("st-001-ne"),
                                  device("st-005-ne"))
    assert Limit(value=2.0, factor=1.5).resolve(river, T0) == 3.0
    assert Limit(value=2.0, overrides={river.site.id: 7.0}).resolve(river, T0) == 7.0
    assert Limit(value=2.0, overrides={river.site.id: 7.0}).resolve(drinking, T0) == 2.0
    dated = Limit.model_validate({"by_date": [{"value": 75}, {"since": "2026-03-01", "value": 60}], "factor": 2})
    # The day is Beijing's: 16:00 UTC on 28 Feb is already 1 March there.
    assert dated.resolve(river, datetime(2026, 2, 28, 15, 59, tzinfo=UTC)) == 150
    assert dated.resolve(river, datetime(2026, 2, 28, 16, 0, tzinfo=UTC)) == 120
    assert Limit(site="target_class").resolve(river, T0) == 4.0  # IV: an inner river with no target given
    assert Limit(site="target_class").resolve(drinking, T0) == 3.0
    assert Limit(site="tilt_limit", factor=0.5).resolve(low, T0) == pytest.approx(0.015)
    assert Limit(site="tilt_limit").resolve(tall, T0) == pytest.approx(0.02)


def test_target_class_defaults() -> None:
    assert site_target_class(device("wq-minjiang-02")) == "III"
    river = device("wq-baima-01")
    assert site_target_class(river) == (river.site.target_class or "IV")
    named = next((d for d in REGISTRY if d.domain == "water" and d.site.target_class), None)
    if named is not None:
        assert site_target_class(named) == named.site.target_class


def test_limit_needs_exactly_one_source_in_order() -> None:
    cases: list[dict[str, Any]] = [
        {}, {"value": 1, "site": "tilt_limit"}, {"by_date": []},
        {"by_date": [{"since": "2026-03-01", "value": 1}, {"since": "2026-01-01", "value": 2}]}]
    for bad in cases:
        with pytest.raises(ValueError):
            Limit.model_validate(bad)


# -- rule files ------------------------------------------------------------------------------------------

GOOD = """rules:
- id: hot
  kind: threshold
  domain: waste
  metric: temperature
  op: ">="
  limit: 60
  severity: high
  message: "{site_name} {value}"
  message_en: "{value}"
  source: "test [U]"
"""


def test_rule_file_errors_name_file_line_rule_and_field() -> None:
    with pytest.raises(RuleError, match=r"^f\.yaml: not valid YAML"):
        parse_rules("rules: [", "f.yaml")
    with pytest.raises(RuleError, match=r"^f\.yaml: expected a mapping with a 'rules' list$"):
        parse_rules("- 1", "f.yaml")
    with pytest.raises(RuleError, match=r"unknown top-level key\(s\) extra, more; only 'rules' is allowed"):
        parse_rules(GOOD + "extra: 1\nmore: 2\n", "f.yaml")
    with pytest.raises(RuleError, match=r"^f\.yaml: every rule must be a mapping, got 3$"):
        parse_rules("rules: [3]", "f.yaml")
    with pytest.raises(RuleError) as bad:
        parse_rules(GOOD.replace("op: \">=\"", "op: \"=>\""), "f.yaml")
    assert str(bad.value).startswith("f.yaml:2: rule 'hot': op: ")
    with pytest.raises(RuleError) as unknown:
        parse_rules(GOOD.replace("temperature", "colour"), "f.yaml")
    assert str(unknown.value).startswith("f.yaml:2: rule 'hot': metric: unknown metric 'colour'")
    assert "Value error" not in str(unknown.value)


def test_rule_ids_are_unique_across_files(tmp_path: Path) -> None:
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text(GOOD, encoding="utf-8")
    second.write_text(GOOD, encoding="utf-8")
    assert [r.id for r in load_rules([first])] == ["hot"]
    with pytest.raises(RuleError, match=rf"^{second}: rule 'hot': id: duplicate, already defined in {first}$"):
        load_rules([first, second])
    with pytest.raises(RuleError, match="cannot read rule file"):
        load_rules([tmp_path / "missing.yaml"])


def test_listings_describe_each_kind() -> None:
    rows = {row["id"]: row for row in summarise(RULES)}
    by_id = {r.id: r for r in RULES}
    assert rows["device-offline-parking"]["limit"] == "no data for 2 x interval"
    assert rows["device-offline-parking"]["metric"] == "-"
    assert rows["waste-sorting-rate-daily"]["metric"] == "correct/inspected"
    assert rows["waste-sorting-rate-daily"]["limit"] == "< 0.95"
    assert rows["structure-tilt-yellow"]["limit"] == ">= 0.7 x tilt_limit"
    assert rows["structure-tilt-red"]["limit"] == ">= tilt_limit"
    assert rows["air-pm25-24h-class2"]["limit"].startswith("> 75 / 60 from 2026-03-01")
    assert rows["water-do-below-2"] == {
        "id": "water-do-below-2", "kind": "threshold", "domain": "water", "device_type": by_id["water-do-below-2"]
        .device_type, "severity": by_id["water-do-below-2"].severity, "metric": "do", "limit": "< 2",
        "source": by_id["water-do-below-2"].source, "enabled": True}
    assert rule_limit_text(by_id["waste-bin-fire-temperature"]) == ">= 60"


# -- the engine ----------------------------------------------------------------------------------------------

def _stream(seed: int) -> list[tuple[str, Any]]:
    """A day of readings from one device of each type, with incidents, offline spells and clock ticks."""
    rng = random.Random(seed)
    devices = [device(i) for i in ("aq-001", "wq-baima-01", "bin-001-rec", "sort-001", "pk-001", "st-001-ne")]
    out: list[tuple[str, Any]] = []
    t = T0
    for step in range(24 * 12):  # every 5 minutes
        t += timedelta(minutes=5)
        for d in devices:
            if rng.random() < 0.05:
                continue  # a missed reading
            values: dict[str, float | int | bool] = dict(CATALOG[d.type].calm)
            hot = (step // 24) % 7 == 3  # two hours in seven something is wrong everywhere
            for name, v in list(values.items()):
                if isinstance(v, bool):
                    continue
                if isinstance(v, int):
                    values[name] = v
                    continue
                values[name] = round(v * (1 + rng.uniform(-0.05, 0.05)) * (3 if hot and name != "do" else 1), 4)
            if d.type == "water_station" and hot:
                values["do"] = 0.5
            if d.type == "parking_lot":
                total = int(values["total_spots"])
                values["occupied_spots"] = total if hot else int(total * rng.uniform(0.3, 0.8))
            if d.type == "sorting_point":
                values["correct"] = int(values["inspected"]) - (10 if hot else rng.randint(0, 1))
            if d.type == "structure_monitor":
                values["settlement"] = -1.0 - step * 0.01
                values["crack_width"] = 0.3 + (0.2 if hot else 0.0)
            out.append(("reading", Reading(device=d, ts=t, seq=step, values=values)))
        if step % 60 == 30:
            out.append(("status", StatusUpdate(device=devices[0], ts=t, online=False, battery=None, rssi=None)))
        if step % 12 == 0:
            out.append(("tick", t))
    return out


def _replay(engine: Engine, items: list[tuple[str, Any]]) -> list[tuple[Any, ...]]:
    out: list[AlertTransition] = []
    for kind, item in items:
        out += engine.tick(item) if kind == "tick" else engine.process(item)
    return [(t.event, t.alert.alert_id, t.alert.value, t.alert.limit, t.alert.last_seen) for t in out]


@pytest.mark.parametrize("cut", [0.25, 0.5, 0.8])
def test_a_restart_anywhere_changes_nothing(cut: float) -> None:
    stream = _stream(11)
    split = int(len(stream) * cut)
    straight = Engine(RULES, REGISTRY)
    _replay(straight, stream[:split])
    expected = _replay(straight, stream[split:])
    first = Engine(RULES, REGISTRY)
    _replay(first, stream[:split])
    saved = json.loads(json.dumps(first.snapshot()))  # what the alert store keeps
    assert saved["version"] == SNAPSHOT_VERSION
    resumed = Engine(RULES, REGISTRY)
    resumed.restore(saved)
    assert resumed.snapshot() == first.snapshot()
    assert _replay(resumed, stream[split:]) == expected
    assert resumed.active() == straight.active() and resumed.stats == straight.stats
    assert {"firing", "resolved"} <= {e[0] for e in expected}, "the stream should fire and resolve after the cut"


def test_a_snapshot_of_another_version_is_refused() -> None:
    engine = Engine(RULES, REGISTRY)
    snap = engine.snapshot() | {"version": SNAPSHOT_VERSION + 1}
    with pytest.raises(ValueError, match=f"engine snapshot version {SNAPSHOT_VERSION + 1} is not {SNAPSHOT_VERSION}"):
        engine.restore(snap)


def test_state_of_removed_devices_and_rules_is_dropped() -> None:
    stream = _stream(5)[:400]
    first = Engine(RULES, REGISTRY)
    _replay(first, stream)
    snap = json.loads(json.dumps(first.snapshot()))
    smaller = Registry(devices={k: d for k, d in REGISTRY.devices.items() if k != "st-001-ne"}, sites=REGISTRY.sites)
    kept_rules = [r for r in RULES if not r.id.startswith("waste-")]
    resumed = Engine(kept_rules, smaller)
    resumed.restore(snap)
    state = resumed.snapshot()["state"]
    assert not [k for k in state if k.startswith("waste-")]
    assert not [k for k in state if k.endswith("|st-001-ne") and k.startswith(("structure-crack-growth",
                                                                                "structure-settlement-rate"))]
    assert [k for k in state if k.startswith("air-") or k.startswith("structure-")] or not state
    assert not [a for a in resumed.active() if a["rule_id"].startswith("waste-")]


def test_stored_records_are_evaluated_like_messages() -> None:
    bin_ = device("bin-001-rec")
    hot = [r for r in RULES if r.id == "waste-bin-fire-temperature"]
    from_messages = Engine(hot, REGISTRY)
    from_records = Engine(hot, REGISTRY, derive_always=("occupancy",))
    values = {**CATALOG[bin_.type].calm, "temperature": 70.0}
    reading = Reading(device=bin_, ts=T0, seq=1, values=values)
    expected = [(t.event, t.alert.alert_id) for t in from_messages.process(reading)]
    evaluation = from_records.evaluate(Point.from_reading(reading))
    assert [(t.event, t.alert.alert_id) for t in evaluation.transitions] == expected == [
        ("firing", f"waste-bin-fire-temperature|{bin_.id}@{int(T0.timestamp() * 1000)}")]
    assert evaluation.device == bin_ and evaluation.ts_ms == int(T0.timestamp() * 1000)
    assert evaluation.values == values and "temperature" in evaluation.derived and "occupancy" in evaluation.derived
    status = StatusEvent(bin_.id, bin_.domain, bin_.street, bin_.site.id, int(T0.timestamp() * 1000) + 1, False)
    offline = Engine([r for r in RULES if r.id == "device-offline-waste"], REGISTRY)
    assert [t.alert.rule_id for t in offline.evaluate(status).transitions] == ["device-offline-waste"]
    ghost = Point("ghost", "waste", "smart_bin", "x", "y", 1, {"temperature": 99.0})
    assert from_records.evaluate(ghost).device is None and from_records.stats.unknown_device == 1


def test_ratio_days_close_by_beijing_calendar_and_lateness() -> None:
    point = device("sort-001")
    rule = next(r for r in RULES if r.id == "waste-sorting-rate-daily")
    engine = Engine([rule], REGISTRY, lateness_s=600)
    noon = datetime(2026, 5, 1, 4, tzinfo=UTC)  # 12:00 Beijing
    engine.process(Reading(device=point, ts=noon, seq=1, values={"inspected": 100, "correct": 80}))
    # Midnight Beijing is 16:00 UTC; the day closes once the lateness bound has passed after it.
    midnight = datetime(2026, 5, 1, 16, tzinfo=UTC)
    assert engine.tick(midnight + timedelta(seconds=599)) == []
    closed = engine.tick(midnight + timedelta(seconds=601))
    assert [(t.event, t.alert.value, t.alert.limit) for t in closed] == [("firing", 0.8, 0.95)]
    assert closed[0].alert.last_seen == midnight - timedelta(milliseconds=1)
    # A reading for the closed day arrives too late to count.
    engine.process(Reading(device=point, ts=noon, seq=2, values={"inspected": 100, "correct": 100}))
    assert engine.stats.late_ignored == 1


def test_date_of_a_by_date_limit_is_the_observation_date() -> None:
    rule = next(r for r in RULES if r.id == "air-pm25-24h-class2")
    assert not isinstance(rule, AbsenceRule | TargetRule)
    assert rule.limit.by_date is not None and rule.limit.by_date[1].since == date(2026, 3, 1)


def test_limit_text_applies_the_factor_and_unknown_metrics_list_the_known() -> None:
    scaled = parse_rules(GOOD.replace("limit: 60", "limit: {value: 60, factor: 1.5}"), "f.yaml")[0]
    assert rule_limit_text(scaled) == ">= 90"
    with pytest.raises(RuleError) as unknown:
        parse_rules(GOOD.replace("temperature", "colour").replace("domain: waste", "domain: waste\n  "
                                                                   "device_type: smart_bin"), "f.yaml")
    known = str(unknown.value).split("known: ", 1)[1].split(", ")
    assert "temperature" in known and "occupancy" in known and known == sorted(known)
