"""Daily and weather patterns in simulated time, within the catalog's physical ranges."""

from __future__ import annotations

import itertools
import json
import statistics
from collections import defaultdict
from datetime import timedelta

import pytest

from gulou.devices.catalog import CATALOG
from gulou.devices.registry import Registry
from gulou.simulators import SimMessage, generate
from gulou.simulators.model import local_hour
from tests.unit.simulators.helpers import START, per_type, subset

DAYS = 3


@pytest.fixture(scope="module")
def small(registry: Registry) -> Registry:
    """Three devices of each type plus two lots of each lot type."""
    lots: dict[str, list[str]] = defaultdict(list)
    for d in registry.by_domain("parking"):
        lots[d.site.lot_type or ""].append(d.id)
    keep = per_type(registry, 3) + [i for ids in lots.values() for i in ids[:2]]
    return subset(registry, keep)


@pytest.fixture(scope="module")
def days(small: Registry) -> list[SimMessage]:
    """Three simulated days (Monday to Wednesday) of the small registry."""
    return list(generate(small, seed=11, start=START, sim_duration=DAYS * 86400))


def by_hour(messages: list[SimMessage], registry: Registry, dtype: str, metric: str,
            lot_type: str | None = None) -> dict[int, float]:
    """Mean of a metric per local hour over all devices of a type."""
    acc: dict[int, list[float]] = defaultdict(list)
    for m in messages:
        device = registry.devices.get(m.device_id)
        if m.kind != "telemetry" or device is None or device.type != dtype:
            continue
        if lot_type is not None and device.site.lot_type != lot_type:
            continue
        acc[int(local_hour(m.sim_time))].append(float(json.loads(m.payload)[metric]))
    return {h: statistics.mean(v) for h, v in acc.items()}


def test_every_value_lies_within_the_catalog_range(days: list[SimMessage], small: Registry) -> None:
    for m in days:
        if m.kind != "telemetry":
            continue
        payload = json.loads(m.payload)
        for metric in CATALOG[small.devices[m.device_id].type].metrics:
            value = payload[metric.name]
            if metric.minimum is not None:
                assert metric.minimum <= value <= (metric.maximum or value), (m.topic, metric.name, value)


def test_no2_and_co_peak_in_the_morning_and_evening_rush(days: list[SimMessage], small: Registry) -> None:
    for metric in ("no2", "co"):
        h = by_hour(days, small, "air_station", metric)
        assert h[8] > 1.3 * h[3] and h[18] > 1.3 * h[3], (metric, h)


def test_pm25_is_higher_in_the_rush_than_at_midday(days: list[SimMessage], small: Registry) -> None:
    h = by_hour(days, small, "air_station", "pm25")
    assert h[8] > h[12]


def test_ozone_peaks_in_the_afternoon(days: list[SimMessage], small: Registry) -> None:
    h = by_hour(days, small, "air_station", "o3")
    assert max(h, key=lambda k: h[k]) in range(13, 18)
    assert h[15] > 2 * h[4]


def test_weather_makes_multi_day_pm25_differences(registry: Registry) -> None:
    station = subset(registry, ["aq-001"])
    daily: dict[str, list[float]] = defaultdict(list)
    for m in generate(station, seed=11, start=START, sim_duration=14 * 86400):
        if m.kind == "telemetry":
            daily[m.sim_time.date().isoformat()].append(json.loads(m.payload)["pm25"])
    means = [statistics.mean(v) for v in daily.values()]
    assert max(means) > 2.5 * min(means)  # clean spells and stagnant episodes over two weeks


def test_dissolved_oxygen_follows_the_day_night_cycle(days: list[SimMessage], small: Registry) -> None:
    h = by_hour(days, small, "water_station", "do")
    assert h[15] > h[4] + 0.8
    ph = by_hour(days, small, "water_station", "ph")
    assert ph[15] > ph[4]


def test_inner_river_values_sit_in_class_iii_to_iv(days: list[SimMessage], small: Registry) -> None:
    values: dict[str, list[float]] = defaultdict(list)
    for m in days:
        if m.kind == "telemetry" and m.domain == "water":
            for k, v in json.loads(m.payload).items():
                values[k].append(v)
    assert 3.0 <= statistics.mean(values["do"]) <= 7.5
    assert statistics.mean(values["nh3n"]) <= 1.5 and statistics.mean(values["codmn"]) <= 10
    assert statistics.mean(values["tp"]) <= 0.3 and min(values["transparency"]) >= 25
    assert min(values["do"]) >= 2.0 and min(values["orp"]) >= 50  # no black-odour readings without an incident


def test_bins_fill_in_the_drop_off_windows_and_are_emptied(days: list[SimMessage], small: Registry) -> None:
    h = by_hour(days, small, "smart_bin", "fill_level")
    assert h[8] > h[5] + 0.05 and h[20] > h[17] + 0.05
    fills = [json.loads(m.payload)["fill_level"] for m in days if m.device_id == "bin-001-food"
             and m.kind == "telemetry"]
    drops = [a - b for a, b in itertools.pairwise(fills) if a - b > 0.2]
    assert len(drops) >= 2 * DAYS - 1  # a collection round after each window


def test_sorting_points_report_a_correct_rate_between_93_and_98_percent(days: list[SimMessage]) -> None:
    inspected = correct = 0
    for m in days:
        if m.kind == "telemetry" and m.topic.startswith("gulou/waste/sort-"):
            payload = json.loads(m.payload)
            assert payload["correct"] <= payload["inspected"]
            inspected += payload["inspected"]
            correct += payload["correct"]
    assert inspected > 1000
    assert 0.93 <= correct / inspected <= 0.98


def test_lots_fill_by_day_or_by_night_per_lot_type(days: list[SimMessage], small: Registry) -> None:
    for lot_type in ("office", "hospital", "commercial"):
        h = by_hour(days, small, "parking_lot", "occupied_spots", lot_type)
        assert h[11] > 2 * h[3], lot_type
    residential = by_hour(days, small, "parking_lot", "occupied_spots", "residential")
    assert residential[23] > 1.5 * residential[11]


def test_total_spots_is_the_site_capacity(days: list[SimMessage], small: Registry) -> None:
    for m in days:
        if m.kind == "telemetry" and m.domain == "parking":
            payload = json.loads(m.payload)
            assert payload["total_spots"] == small.devices[m.device_id].site.capacity
            assert 0 <= payload["occupied_spots"] < payload["total_spots"]


def test_building_sensors_drift_slowly_with_small_noise(days: list[SimMessage], small: Registry) -> None:
    device = next(d.id for d in small if d.type == "structure_monitor")
    tilts = [json.loads(m.payload)["tilt_x"] for m in days if m.device_id == device and m.kind == "telemetry"]
    steps = [abs(b - a) for a, b in itertools.pairwise(tilts)]
    assert max(steps) < 0.02 and max(tilts) - min(tilts) < 0.1


def test_weekend_office_lots_stay_emptier(registry: Registry) -> None:
    office = subset(registry, [d.id for d in registry.by_domain("parking") if d.site.lot_type == "office"][:2])
    saturday = START + timedelta(days=5)
    sat = [json.loads(m.payload)["occupied_spots"] for m in generate(office, seed=1, start=saturday + timedelta(
        hours=11), sim_duration=3600) if m.kind == "telemetry"]
    mon = [json.loads(m.payload)["occupied_spots"] for m in generate(office, seed=1, start=START + timedelta(
        hours=11), sim_duration=3600) if m.kind == "telemetry"]
    assert statistics.mean(sat) < 0.5 * statistics.mean(mon)
