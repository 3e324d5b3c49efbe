"""Air figures of the generated month against a hand computation (see monthdata's docstring for the data).

HJ 633-2026 daily IAQI used below (May 2026): PM2.5 24 h breakpoints 0/35/60/115/150/250 -> 0/50/100/150/200/300,
so 35 < C <= 60 gives 50 + 2 (C - 35) and 60 < C <= 115 gives ceil(100 + 50 (C - 60) / 55); PM10 40 -> 40;
SO2 10 -> 10; NO2 20 -> 25; CO 0.5 -> 13; O3 1 h 80 -> 25; O3 8 h 80 -> 40. The district PM2.5 is 30 + d on a
plain day d.
"""

from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path

import polars as pl
import pytest

from gulou.devices.registry import Registry
from gulou.reports import air
from gulou.reports.model import Report
from gulou.reports.source import StoreSource
from gulou.rules.standards import CHINA_TZ, daily_mean, o3_daily_max_8h
from tests.unit.reports import monthdata


def plain_aqi(day: int) -> int:
    """AQI of a plain day: PM2.5 30 + d sets it above 40 (PM10's IAQI)."""
    conc = 30 + day
    if conc <= 35:
        return max(40, -(-50 * conc // 35))  # ceil(50 C / 35)
    if conc <= 60:
        return 50 + 2 * (conc - 35)
    return 100 + -(-50 * (conc - 60) // 55)  # ceil(100 + 50 (C - 60) / 55)


EXPECTED = {d: plain_aqi(d) for d in range(1, 32)} | {
    7: 220,   # PM2.5 170: 200 + 100 (170 - 150) / 100
    10: 125,  # O3 daily max 1 h 250: 100 + 50 (250 - 200) / 100; the 8 h max 118.75 only gives 66
    15: 60,   # station c invalid: PM2.5 (35 + 45) / 2 = 40
    20: 70,   # station c invalid, a's 44-minute hour (500) left out: PM2.5 (40 + 50) / 2 = 45
}
INVALID_DAYS = {25, 26}


def test_district_daily_aqi_matches_the_hand_computation(month_report: Report) -> None:
    got = {d.date.day: d.aqi for d in month_report.district_daily_aqi}
    assert len(got) == 31
    for day in range(1, 32):
        if day in INVALID_DAYS:
            assert got[day] is None, day
        else:
            assert got[day] == EXPECTED[day], day
    assert [got[d] for d in (1, 2, 3, 4, 5, 6, 30, 31)] == [45, 46, 48, 49, 50, 52, 100, 101]


def test_categories_primary_pollutants_and_o3_daily_max_1h(month_report: Report) -> None:
    days = {d.date.day: d for d in month_report.district_daily_aqi}
    assert (days[7].category, days[7].primary_pollutants) == ("重度污染", ["pm25"])
    assert (days[10].category, days[10].primary_pollutants) == ("轻度污染", ["o3"])
    assert days[10].concentrations["o3"] == 250.0
    assert days[10].concentrations["o3_8h"] == 118.8  # 118.75 shown half-up at 0.1
    assert days[1].primary_pollutants == []  # AQI <= 50: no primary pollutant
    assert days[15].stations["pm25"] == 2 and days[14].stations["pm25"] == 3
    assert days[1].standard == "HJ 633-2026 / GB 3095-2026"


def test_invalid_district_days_say_why(month_report: Report) -> None:
    days = {d.date.day: d for d in month_report.district_daily_aqi}
    assert days[25].reasons == ["PM2.5、PM10、SO₂、NO₂、CO、O₃(1h)、O₃(8h)：3 个评价点位均无有效日均值"]
    assert not days[26].valid
    assert days[26].reasons == ["PM2.5、PM10、SO₂、NO₂、CO、O₃(1h)：3 个评价点位均无有效日均值"]
    # 19 hours still give 14 valid 8 h windows (ending 10:00-23:00), so the O3 8 h value itself is valid.
    assert days[26].concentrations["o3_8h"] == 80.0


def test_good_day_ratio_and_heavy_pollution_days(month_report: Report) -> None:
    # 29 valid days; not good: 7 (220), 10 (125), 31 (101).
    assert (month_report.good_days, month_report.valid_days) == (26, 29)
    assert month_report.good_day_ratio == pytest.approx(26 / 29)
    assert month_report.heavy_pollution_days == 1


def test_pm25_and_o3_means_with_their_counts(month_report: Report) -> None:
    # PM2.5: sum of 30 + d over the 29 valid days = 1315, plus 133 (day 7), minus 5 (15) and 5 (20) = 1438.
    assert month_report.pm25_mean.value == round(1438 / 29, 1) == 49.6
    assert (month_report.pm25_mean.days, month_report.pm25_mean.needed, month_report.pm25_mean.valid) == (29, 27, True)
    # O3 8 h on 30 days (all but 25): 29 x 80 + 118.75.
    assert month_report.o3_8h.mean == round((29 * 80 + 118.75) / 30, 1) == 81.3
    assert month_report.o3_8h.days == 30
    assert month_report.o3_8h.p90 == 80.0


def test_capture_rates(month_report: Report) -> None:
    rates = {c.device_id: c for c in month_report.capture_rate}
    # a: 744 hours less 3 + 1 (day 20), 24 (25), 5 (26); b: less 24 + 5; c: less 5 (15), 4 + 1 (20), 24, 5.
    assert [(rates[d].valid_hours, rates[d].expected_hours) for d in ("aq-a", "aq-b", "aq-c")] == [
        (711, 744), (715, 744), (705, 744)]
    assert rates["aq-a"].rate == round(711 / 744, 4)
    # Minutes stored: a loses 180 + 16 + 1440 + 300, b 24 x 15 + 1440 + 300, c 300 + 240 + 16 + 1440 + 300.
    assert [rates[d].readings for d in ("aq-a", "aq-b", "aq-c")] == [42704, 42540, 42344]
    assert rates["aq-b"].expected_readings == 44640
    assert rates["aq-b"].readings_rate == round(42540 / 44640, 4)
    assert rates["wq-r1"].readings == rates["wq-r1"].expected_readings == 744
    assert rates["aq-a"].indicative and not rates["wq-r1"].indicative


def test_station_days_at_the_validity_edges(month_report: Report) -> None:
    stations = {s.device_id: {d.date.day: d for d in s.days} for s in month_report.stations}
    # a on day 20: hours 00-02 missing and 03 has 44 minutes, so exactly 20 valid hours: valid, and the
    # invalid hour's 500 is not in the mean.
    assert stations["aq-a"][20].valid and stations["aq-a"][20].concentrations["pm25"] == 40.0
    # b on day 20: every hour has exactly 45 minutes: all 24 hours valid.
    assert stations["aq-b"][20].valid and stations["aq-b"][20].concentrations["pm25"] == 50.0
    assert not stations["aq-c"][20].valid
    assert stations["aq-c"][20].reasons == ["PM2.5、PM10、SO₂、NO₂、CO、O₃(1h) 有效小时 19（需 20）"]
    assert stations["aq-c"][15].reasons == ["PM2.5、PM10、SO₂、NO₂、CO、O₃(1h) 有效小时 19（需 20）"]
    assert stations["aq-a"][25].reasons == ["无数据"]
    summary = {s.device_id: s for s in month_report.stations}
    assert (summary["aq-a"].valid_days, summary["aq-c"].valid_days) == (29, 27)
    assert summary["aq-c"].max_aqi == 230  # PM2.5 180 on day 7
    assert all(s.indicative and s.evaluation for s in month_report.stations)
    assert month_report.indicative


def test_station_daily_values_agree_with_the_standards_functions(month_store: Path,
                                                                 month_registry: Registry) -> None:
    start = datetime(2026, 5, 19, tzinfo=CHINA_TZ)
    until = datetime(2026, 5, 21, tzinfo=CHINA_TZ)
    with StoreSource(month_store) as source:
        frames = source.iter_readings("air", start, until, air.POLLUTANTS)
        grid, daily = air.station_days(frames, month_registry.by_domain("air"), date(2026, 5, 19), date(2026, 5, 20))
    for row in daily.iter_rows(named=True):
        hours = grid.filter((pl.col("device_id") == row["device_id"]) & (pl.col("hour").dt.date() == row["day"]))
        stamps = [datetime.combine(row["day"], time(h.hour)) for h in hours["hour"]]
        pm25 = daily_mean(list(zip(stamps, hours["pm25"].to_list(), strict=True)))
        o3 = o3_daily_max_8h(list(zip(stamps, hours["o3"].to_list(), strict=True)))
        assert pm25.value == row["pm25"], row
        assert o3.value == row["o3_8h"], row


def test_an_hour_needs_45_minutes(month_registry: Registry) -> None:
    devices = month_registry.by_domain("air")
    base = datetime(2026, 5, 1, 8, 0)
    frame = pl.DataFrame({
        "device_id": ["aq-a"] * 45 + ["aq-b"] * 44,
        "local": [base.replace(minute=m) for m in range(45)] + [base.replace(minute=m) for m in range(44)],
        **{p: [10.0] * 89 for p in air.POLLUTANTS},
    })
    hourly = {r["device_id"]: r for r in air.hourly_means(frame, devices).iter_rows(named=True)}
    assert hourly["aq-a"]["pm25"] == 10.0 and hourly["aq-a"]["pm25_minutes"] == 45
    assert hourly["aq-b"]["pm25"] is None and hourly["aq-b"]["pm25_minutes"] == 44


def test_o3_8h_daily_max_below_14_windows_counts_only_above_the_limit(month_registry: Registry) -> None:
    devices = month_registry.by_domain("air")[:1]
    day = datetime(2026, 5, 1)
    # 12 hours of data (12:00-23:59): windows ending 17:00-23:00 have >= 6 hours: 7 values, fewer than 14.
    frames = []
    for level in (150.0, 170.0):
        rows = [{"device_id": devices[0].id, "local": day.replace(hour=h, minute=m), **dict.fromkeys(air.POLLUTANTS,
                 level)} for h in range(12, 24) for m in range(60)]
        frames.append(pl.DataFrame(rows))
    below = air.station_days([frames[0]], devices, day.date(), day.date())[1].row(0, named=True)
    above = air.station_days([frames[1]], devices, day.date(), day.date())[1].row(0, named=True)
    assert (below["o3_8h_values"], below["o3_8h"]) == (7, None)  # 150 <= 160: not enough values
    assert (above["o3_8h_values"], above["o3_8h"]) == (7, 170.0)  # 170 > 160: valid all the same


def test_the_generated_month_is_what_the_docstring_says(month_registry: Registry) -> None:
    points = list(monthdata.air_points(month_registry))
    assert len(points) == 42704 + 42540 + 42344
