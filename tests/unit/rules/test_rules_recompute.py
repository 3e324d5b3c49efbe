"""Recomputation with polars: hourly validity, 24 h means, O3 daily max 8 h, daily AQI, good-day ratio."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gulou.devices.registry import Registry
from gulou.rules.recompute import hourly_means, o3_daily_max_8h, recompute_air

DAY0 = datetime(2026, 4, 30, 16, 0, tzinfo=UTC)  # 2026-05-01 00:00 Beijing time


def rows(device: str, day: datetime, hours: range, per_hour: int, **values: float) -> list[dict[str, Any]]:
    """Stored-reading rows as EmbeddedStore.query_readings returns them."""
    return [{"device_id": device, "domain": "air", "ts": (day + timedelta(hours=h, minutes=m)).isoformat(),
             **values} for h in hours for m in range(per_hour)]


CALM = {"pm25": 20.0, "pm10": 40.0, "so2": 8.0, "no2": 30.0, "o3": 80.0, "co": 0.6}


def test_hourly_validity_needs_45_minutes(registry: Registry) -> None:
    data = rows("aq-001", DAY0, range(0, 1), 50, **CALM) + rows("aq-001", DAY0, range(1, 2), 30, **CALM)
    hourly = hourly_means(data, registry)
    assert hourly.height == 2
    assert hourly["pm25"].to_list() == [20.0, None]  # 30 one-minute readings do not make a valid hour


def test_o3_daily_max_8h_validity() -> None:
    day = DAY0.date()
    assert o3_daily_max_8h({h: 100.0 for h in range(24)}, day) == pytest.approx(100.0)
    assert o3_daily_max_8h({h: 100.0 for h in range(10)}, day) is None  # too few valid 8 h values
    assert o3_daily_max_8h({h: 200.0 for h in range(8)}, day) == pytest.approx(200.0)  # incomplete but over 160


def test_recompute_daily_aqi_and_good_day_ratio(registry: Registry) -> None:
    good = rows("aq-001", DAY0, range(24), 46, **CALM)
    bad = rows("aq-001", DAY0 + timedelta(days=1), range(24), 46, **{**CALM, "pm25": 120.0})
    short = rows("aq-001", DAY0 + timedelta(days=2), range(10), 46, **CALM)  # < 20 valid hours
    data = good + bad + short

    def query(**kwargs: Any) -> list[dict[str, Any]]:
        assert kwargs["domain"] == "air"
        return data

    result = recompute_air(query, registry, DAY0, DAY0 + timedelta(days=3))
    (station,) = result["stations"]
    assert [d["date"] for d in station["days"]] == ["2026-05-01", "2026-05-02", "2026-05-03"]
    assert [d["valid"] for d in station["days"]] == [True, True, False]
    assert station["days"][0]["pm25"] == pytest.approx(20.0) and station["days"][0]["aqi"] <= 100
    assert station["days"][1]["aqi"] > 100
    assert station["valid_days"] == 2 and station["good_days"] == 1 and station["good_day_ratio"] == 0.5
    assert result["good_day_ratio"] == 0.5


def test_cli_recompute_reads_the_embedded_store(tmp_path: Any, registry: Registry) -> None:
    import json

    from click.testing import CliRunner

    from gulou.cli import cli
    from gulou.sinks.embedded import EmbeddedStore
    from gulou.tsdb.records import Batch, Point

    device = registry.get("aq-001")
    assert device is not None
    points = [Point(device_id=device.id, domain="air", type=device.type, street=device.street, site=device.site.id,
                    ts_ms=int(datetime.fromisoformat(r["ts"]).timestamp() * 1000), values=CALM)
              for r in rows("aq-001", DAY0, range(24), 46)]
    store = EmbeddedStore(tmp_path / "gulou.db")
    store.write(Batch(points=points))
    store.close()
    result = CliRunner().invoke(cli, ["rules", "recompute", "--since", "2026-05-01", "--until", "2026-05-02",
                                      "--store", str(tmp_path / "gulou.db"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output[result.output.index("{"):])
    assert data["stations"][0]["device_id"] == "aq-001" and data["good_day_ratio"] == 1.0


def test_o3_daily_max_1h_is_part_of_the_daily_aqi(registry: Registry) -> None:
    # O3 130 µg/m³ every hour but 250 at 14:00: the daily max 8 h is (7 × 130 + 250) / 8 = 145 (IAQI 88 on the
    # 2026 8 h column 100–160), but the max 1 h 250 rates 100 + 50/100 × 50 = 125: 轻度污染, not a good day.
    data = [r for h in range(24) for r in rows("aq-001", DAY0, range(h, h + 1), 46,
                                                 **{**CALM, "o3": 250.0 if h == 14 else 130.0})]
    result = recompute_air(lambda **_: data, registry, DAY0, DAY0 + timedelta(days=1))
    (day,) = result["stations"][0]["days"]
    assert day["o3"] == 250.0 and day["o3_8h"] == pytest.approx(145.0)
    assert day["aqi"] == 125 and day["primary_pollutants"] == ["o3"]
    assert result["good_day_ratio"] == 0.0


def test_good_day_ratio_counts_district_days_not_station_days(registry: Registry) -> None:
    # Two evaluation stations on one day: PM2.5 20 (good) and 120 (AQI 148). Pooled, half the station-days are
    # good; the district's PM2.5 is their mean 70 → 100 + 50/55 × 10 = 109.1 → 110: no good district day.
    stations = [d.id for d in registry.by_domain("air") if d.evaluation_station][:2]
    data = rows(stations[0], DAY0, range(24), 46, **CALM) + rows(stations[1], DAY0, range(24), 46,
                                                                 **{**CALM, "pm25": 120.0})
    result = recompute_air(lambda **_: data, registry, DAY0, DAY0 + timedelta(days=1))
    assert result["good_station_day_ratio"] == 0.5
    (district,) = result["district_days"]
    assert district["aqi"] == 110 and result["good_day_ratio"] == 0.0
