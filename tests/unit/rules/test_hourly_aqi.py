"""HJ 633 hourly values in the engine: alerts judge a valid hourly mean, never a single minute reading."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from gulou.bench.rules_bench import CALM
from gulou.devices.registry import Device, Registry
from gulou.rules.alerts import AlertTransition
from gulou.rules.engine import Engine
from gulou.rules.hourly import HOUR_MS, HourAccumulator, HourlyValues, hour_start, rate_hour
from gulou.rules.model import load_rules
from gulou.timeutil import CHINA_TZ, to_ms
from tests.unit.rules.test_rules_engine import T0, at, reading

AQI_RULES = [r for r in load_rules() if getattr(r, "metric", None) == "aqi"]


@pytest.fixture
def station(registry: Registry) -> Device:
    """An air micro-station reporting every minute."""
    device = registry.get("aq-001")
    assert device is not None and device.interval_s == 60
    return device


def _hour(engine: Engine, device: Device, start_min: float, pm25: list[float], **extra: Any) -> list[AlertTransition]:
    """One reading a minute from ``start_min`` on, PM2.5 from the list, the other pollutants calm."""
    out: list[AlertTransition] = []
    for minute, value in enumerate(pm25):
        out += engine.process(reading(device, at(start_min + minute), **{**CALM["air_station"], **extra,
                                                                          "pm25": value}))
    return out


def test_an_hour_swinging_across_the_limit_with_a_mean_below_it_raises_nothing(registry: Registry,
                                                                              station: Device) -> None:
    engine = Engine(AQI_RULES, registry)
    # Minute readings alternate PM2.5 100 and 10 µg/m³: one reading alone rates AQI 137 (the 2026 column
    # 60–115: 100 + 50/55 × 40 = 136.4 → 137), far over 100. The hour's mean is 55: 50 + 50/25 × 20 = 90.
    swing = [100.0 if m % 2 == 0 else 10.0 for m in range(60)]
    out = _hour(engine, station, 0, swing)
    # The next hour's readings move the watermark 10 minutes (the lateness bound) past the hour: it closes.
    out += _hour(engine, station, 60, [30.0] * 11)
    assert out == []
    hours = HourAccumulator(60)
    for minute, value in enumerate(swing):
        hours.add(to_ms(at(minute)), {"pm25": value})
    (closed,) = hours.close("aq-001", to_ms(at(60)))
    result = rate_hour(closed).result
    assert closed.means == {"pm25": 55.0} and result is not None and result.aqi == 90


def test_an_hour_whose_mean_is_over_the_limit_fires_once_with_the_hourly_aqi(registry: Registry,
                                                                            station: Device) -> None:
    engine = Engine(AQI_RULES, registry)
    # PM2.5 150 and 50 alternating: single readings rate 200 and 80; the mean 100 rates 137 (轻度污染).
    out = _hour(engine, station, 0, [150.0 if m % 2 == 0 else 50.0 for m in range(60)])
    assert out == []  # the hour is still open
    out += _hour(engine, station, 60, [30.0] * 9)
    assert out == []  # 11:08: a reading of 10:59 could still arrive within the lateness bound
    out += _hour(engine, station, 69, [30.0] * 5)
    fired = [t for t in out if t.event == "firing"]
    assert [(t.alert.rule_id, t.alert.value, t.alert.limit) for t in fired] == [("air-aqi-over-100", 137.0, 100.0)]
    alert = fired[0].alert
    assert alert.first_seen == T0 and "137" in alert.message and "轻度污染" in alert.message


def test_an_hour_with_44_minutes_of_data_has_no_aqi(registry: Registry, station: Device) -> None:
    engine = Engine(AQI_RULES, registry, derive_always=("aqi",))
    out = _hour(engine, station, 0, [300.0] * 44)  # AQI 350 by every reading, but only 44 minutes
    out += _hour(engine, station, 70, [30.0])
    assert out == []
    (hour,) = engine.take_hours()
    assert hour.result is None and hour.values.invalid()["pm25"] == 44
    assert engine.take_hours() == []  # taken once


def test_45_minutes_make_a_valid_hour_and_a_silent_station_is_closed_by_the_clock(registry: Registry,
                                                                                  station: Device) -> None:
    engine = Engine(AQI_RULES, registry, derive_always=("aqi",))
    out = _hour(engine, station, 0, [300.0] * 45)
    assert out == [] and engine.tick(at(69)) == []  # the lateness bound has not passed yet
    fired = engine.tick(at(70))
    assert sorted(t.alert.rule_id for t in fired) == [
        "air-aqi-over-100", "air-aqi-over-150", "air-aqi-over-200", "air-aqi-over-300"]
    (hour,) = engine.take_hours()
    assert hour.hour_ms == to_ms(T0) and hour.result is not None and hour.result.aqi == 350
    assert hour.values.minutes["pm25"] == 45


def test_five_minute_readings_count_their_interval() -> None:
    hours = HourAccumulator(300)
    for minute in range(0, 45, 5):  # 9 readings × 5 min = 45 min
        hours.add(to_ms(at(minute)), {"pm25": 40.0})
    hours.add(to_ms(at(40)), {"pm25": 40.0})  # a redelivered reading is not counted again
    (closed,) = hours.close("x", to_ms(at(60)))
    assert closed.means == {"pm25": 40.0} and closed.minutes == {"pm25": 45.0}
    short = HourAccumulator(300)
    for minute in range(0, 40, 5):
        short.add(to_ms(at(minute)), {"pm25": 40.0})
    (closed,) = short.close("x", to_ms(at(60)))
    assert closed.means == {} and closed.minutes == {"pm25": 40.0}


def test_late_readings_of_a_closed_hour_are_refused() -> None:
    hours = HourAccumulator(60)
    hours.add(to_ms(at(5)), {"pm25": 40.0})
    assert len(hours.close("x", to_ms(at(65)))) == 1
    assert not hours.add(to_ms(at(59)), {"pm25": 400.0})
    assert hours.close("x", to_ms(at(200))) == []


def test_o3_8h_and_so2_24h_moving_means_follow_their_validity_minimums() -> None:
    hours = HourAccumulator(60)
    closed: list[HourlyValues] = []
    # 24 hours, 30 minutes of data in hours 6 and 7: O3 valid in 22 hours, SO2 (from hour 2) in 20.
    for h in range(24):
        for minute in range(60 if h < 6 or h >= 8 else 30):
            values: dict[str, float] = {"o3": 100.0 + h}
            if h >= 2:
                values["so2"] = 10.0 * h
            hours.add(to_ms(at(h * 60 + minute)), values)
        closed += hours.close("x", to_ms(at((h + 1) * 60)))
    by_hour = {(c.hour_ms - to_ms(T0)) // HOUR_MS: c for c in closed}
    assert by_hour[4].o3_8h is None and by_hour[4].o3_8h_hours == 5
    assert by_hour[5].o3_8h == pytest.approx(102.5) and by_hour[5].o3_8h_hours == 6
    # Hours 0-7 hold 6 valid O3 values (6 and 7 had 30 minutes): still valid; 2-9 too (2-5, 8, 9).
    assert by_hour[7].o3_8h == pytest.approx(102.5) and by_hour[9].o3_8h_hours == 6
    assert by_hour[22].so2_24h is None and by_hour[23].so2_24h == pytest.approx(
        10.0 * (2 + 3 + 4 + 5 + sum(range(8, 24))) / 20)
    assert by_hour[23].so2_24h_hours == 20 and "so2_24h" in by_hour[23].inputs()


def test_so2_above_the_table_uses_its_24h_mean(registry: Registry) -> None:
    values = HourlyValues("x", to_ms(T0), {"so2": 900.0}, {"so2": 60.0}, so2_24h=100.0, so2_24h_hours=24)
    result = rate_hour(values).result
    # SO2 1 h 900 > 800 has no IAQI; the 24 h mean 100 on the 24 h column (50–150 → 50–100) rates 75.
    assert result is not None and result.aqi == 75 and result.notes


def test_hours_are_beijing_clock_hours() -> None:
    local = datetime(2026, 5, 1, 9, 59, tzinfo=CHINA_TZ)
    assert hour_start(to_ms(local)) == to_ms(local.replace(minute=0))
    assert hour_start(to_ms(local + timedelta(minutes=1))) == to_ms(local.replace(hour=10, minute=0))


def test_open_hours_survive_a_restart(registry: Registry, station: Device) -> None:
    engine = Engine(AQI_RULES, registry)
    _hour(engine, station, 0, [100.0] * 30)
    restarted = Engine(AQI_RULES, registry)
    restarted.restore(engine.snapshot())
    out = _hour(restarted, station, 30, [100.0] * 30)
    out += _hour(restarted, station, 70, [30.0])
    # 60 minutes of PM2.5 100 across the restart: AQI 137, so the hour was whole.
    assert [(t.alert.rule_id, t.alert.value) for t in out] == [("air-aqi-over-100", 137.0)]
