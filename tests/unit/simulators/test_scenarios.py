"""Scripted incidents appear at their simulated times; scenario files fail with file and field named."""

from __future__ import annotations

import itertools
import json
import math
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gulou.devices.registry import Registry
from gulou.simulators import ScenarioError, SimMessage, generate, load_scenario, shipped_scenarios
from gulou.simulators.scenario import schedule
from tests.unit.simulators.helpers import START, readings, subset

HOURS = 7


@pytest.fixture(scope="module")
def incidents_registry(registry: Registry) -> Registry:
    """The devices the shipped incidents target, plus one bystander of each kind."""
    targets = set(schedule(load_scenario("incidents"), registry))
    return subset(registry, targets | {"aq-001", "wq-baima-01", "bin-001-rec", "pk-001", "st-001-ne"})


@pytest.fixture(scope="module")
def stream(incidents_registry: Registry) -> list[SimMessage]:
    """Seven simulated hours of the incidents scenario."""
    return list(generate(incidents_registry, load_scenario("incidents"), seed=5, start=START,
                         sim_duration=HOURS * 3600))


def within(rows: list[tuple[datetime, dict[str, Any]]], start_h: float, end_h: float) -> list[dict[str, Any]]:
    """Payloads whose simulated time lies in [start_h, end_h) hours after START."""
    lo, hi = START + timedelta(hours=start_h), START + timedelta(hours=end_h)
    return [p for t, p in rows if lo <= t < hi]


def test_shipped_scenarios_load_and_target_real_devices(registry: Registry) -> None:
    assert {"incidents", "quiet"} <= set(shipped_scenarios())
    incidents = load_scenario("incidents")
    assert {i.kind for i in incidents.incidents} == {"pm25_episode", "black_odour", "bin_overflow", "bin_fire",
                                                    "lot_full", "building_tilt", "device_silent"}
    assert all(i.at + i.duration <= 6 * 3600 for i in incidents.incidents)
    assert schedule(incidents, registry)
    assert load_scenario("quiet").incidents == []


def test_pm25_episode_above_150_on_the_plateau(stream: list[SimMessage]) -> None:
    # 鼓东街道 from 30 min for 3 h; ramps take the first and last 15 %.
    episode = within(readings(stream, "aq-007"), 1.2, 3.0)
    assert episode and all(p["pm25"] > 150 for p in episode)
    before = within(readings(stream, "aq-007"), 0, 0.5)
    after = within(readings(stream, "aq-007"), 3.6, HOURS)
    assert all(p["pm25"] < 150 for p in before + after)
    assert all(p["pm25"] < 150 for _, p in readings(stream, "aq-001"))  # another street stays clean


def test_black_odour_light_then_severe_then_back(stream: list[SimMessage]) -> None:
    rows = readings(stream, "wq-baima-03")  # 1 h → 5 h
    light = within(rows, 1.5, 3.0)
    severe = within(rows, 3.0, 5.0)
    assert light and all(p["do"] < 2 and p["transparency"] < 25 and p["orp"] < 50 and p["nh3n"] > 8
                         for p in light)
    assert severe and all(p["do"] < 0.2 and p["transparency"] < 10 and p["orp"] < 50 and p["nh3n"] > 8
                          for p in severe)
    assert all(p["do"] >= 2 and p["transparency"] >= 25 for p in within(rows, 5.0, HOURS) + within(rows, 0, 1))


def test_bin_overflows_then_burns(stream: list[SimMessage]) -> None:
    rows = readings(stream, "bin-001-food")
    overflow = within(rows, 1.0, 3.5)
    assert overflow and all(p["fill_level"] >= 0.95 for p in overflow)
    fire = within(rows, 2.5, 3.5)
    temps = [p["temperature"] for p in fire]
    assert all(t >= 60 for t in temps[3:])  # above 60 °C within 15 min
    assert any(b - a >= 10 for a, b in itertools.pairwise(temps))  # ≥ 10 °C in one 5-min report
    assert all(p["temperature"] < 40 for p in within(rows, 3.5, HOURS))
    assert all(p["fill_level"] < 0.95 for p in within(rows, 3.5, HOURS))  # emptied when the crew came


def test_lot_full_means_occupancy_equals_capacity(stream: list[SimMessage], incidents_registry: Registry) -> None:
    capacity = incidents_registry.devices["pk-005"].site.capacity
    rows = readings(stream, "pk-005")
    assert all(p["occupied_spots"] == capacity for p in within(rows, 2.0, 4.0))
    assert all(p["occupied_spots"] < capacity for p in within(rows, 4.0, HOURS) + within(rows, 0, 2.0))


def test_building_tilt_accelerates(stream: list[SimMessage]) -> None:
    for device in ("st-005-ne", "st-005-sw"):
        rows = readings(stream, device)
        tilt = [math.hypot(p["tilt_x"], p["tilt_y"]) for p in within(rows, 3.0, 6.0)]
        crack = [p["crack_width"] for p in within(rows, 3.0, 6.0)]
        n = len(tilt)
        early, late = tilt[n // 2] - tilt[0], tilt[-1] - tilt[n // 2]
        assert tilt[-1] > tilt[0] + 1.0 and late > 2 * early
        assert crack[-1] > crack[0] + 2.0
        assert math.degrees(math.atan(0.02)) < tilt[-1]  # beyond the 3+ storey limit by the end


def test_silent_device_is_absent_and_offline(stream: list[SimMessage]) -> None:
    # aq-012 silent from 4 h for 1.5 h.
    rows = readings(stream, "aq-012")
    assert within(rows, 4.0, 5.5) == []
    assert within(rows, 3.9, 4.0) and within(rows, 5.5, 5.6)
    statuses = [(m.sim_time, json.loads(m.payload)["state"]) for m in stream
                if m.device_id == "aq-012" and m.kind == "status"]
    assert statuses == [(START, "online"), (START + timedelta(hours=4), "offline"),
                        (START + timedelta(hours=5.5), "online"), (START + timedelta(hours=HOURS), "offline")]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("text", "field"), [
    ("incidents:\n  - {kind: lot_full, target: pk-001, at: soon, duration: 1h}\n", "incidents[0].at"),
    ("incidents:\n  - {kind: lot_full, target: pk-001, at: 1h, duration: 0}\n", "incidents[0]"),
    ("incidents:\n  - {kind: flood, target: pk-001, at: 1h, duration: 1h}\n", "incidents[0].kind"),
    ("incidents:\n  - {kind: lot_full, at: 1h, duration: 1h}\n", "incidents[0].target"),
    ("incidents:\n  - {kind: lot_full, target: pk-001, at: 1h, duration: 1h, colour: red}\n",
     "incidents[0].colour"),
    ("faults: {malformed: 2}\nincidents: []\n", "faults"),
    ("faults: {typo: 0.1}\n", "faults.typo"),
    ("incidnts: []\n", "incidnts"),
])
def test_validation_errors_name_the_file_and_the_field(tmp_path: Path, text: str, field: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert str(path) in str(err.value) and f"{field}" in str(err.value)


def test_unknown_target_names_the_file_and_the_field(tmp_path: Path, registry: Registry) -> None:
    path = write(tmp_path, "incidents:\n  - {kind: black_odour, target: aq-001, at: 1h, duration: 1h}\n")
    with pytest.raises(ScenarioError, match=r"bad\.yaml: incidents\[0\]\.target: 'aq-001' matches no water_station"):
        schedule(load_scenario(path), registry)


def test_missing_and_unparsable_files_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="no such scenario file; shipped scenarios: incidents"):
        load_scenario(tmp_path / "nope.yaml")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load_scenario(write(tmp_path, "incidents: [\n"))


def test_pm25_episode_can_cover_every_station(registry: Registry) -> None:
    scenario = load_scenario(None).model_copy(update={"incidents": [
        load_scenario("incidents").incidents[0].model_copy(update={"target": "all"})]})
    assert len(schedule(scenario, registry)) == len(registry.by_domain("air"))
