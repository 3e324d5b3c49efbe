"""Recomputation takes its validity minima from the GB 3095 table: change the table, the results follow."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from gulou.devices.registry import Registry
from gulou.rules.recompute import hourly_means, recompute_air
from gulou.rules.standards import set_data_dir

DAY0 = datetime(2026, 4, 30, 16, 0, tzinfo=UTC)  # 2026-05-01 00:00 Beijing time
CALM = {"pm25": 20.0, "pm10": 40.0, "so2": 8.0, "no2": 30.0, "o3": 80.0, "co": 0.6}
# Ten hours of thirty one-minute readings: too few for the shipped minima (45 min, 20 hours).
ROWS = [{"device_id": "aq-001", "domain": "air", "ts": (DAY0 + timedelta(hours=h, minutes=m)).isoformat(), **CALM}
        for h in range(10) for m in range(30)]


def query(**kwargs: Any) -> list[dict[str, Any]]:
    """The stored rows, whatever the filter."""
    return ROWS


@pytest.fixture
def lenient_table(tmp_path: Path) -> Iterator[Path]:
    """gb3095.yaml with 25 min an hour, 10 hours a day, 3 O3 8 h values a day, and no AQI good enough."""
    source = Path(str(resources.files("gulou.data.standards"))) / "gb3095.yaml"
    doc = yaml.safe_load(source.read_text(encoding="utf-8"))
    doc["validity"]["hourly_min_minutes"]["value"] = 25
    doc["validity"]["daily_min_hours"]["value"] = 10
    doc["validity"]["o3_daily_max_8h_min_values"]["value"] = 3
    doc["validity"]["good_day_max_aqi"]["value"] = 0
    (tmp_path / "gb3095.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    set_data_dir(tmp_path)
    try:
        yield tmp_path
    finally:
        set_data_dir(None)


def test_shipped_minima_refuse_short_hours_and_days(registry: Registry) -> None:
    assert hourly_means(ROWS, registry)["pm25"].to_list() == [None] * 10
    (station,) = recompute_air(query, registry, DAY0, DAY0 + timedelta(days=1))["stations"]
    assert station["valid_days"] == 0


@pytest.mark.usefixtures("lenient_table")
def test_recompute_follows_the_table(registry: Registry) -> None:
    assert hourly_means(ROWS, registry)["pm25"].to_list() == [20.0] * 10
    (station,) = recompute_air(query, registry, DAY0, DAY0 + timedelta(days=1))["stations"]
    assert [d["valid"] for d in station["days"]] == [True]
    assert station["good_days"] == 0  # a good day now needs AQI ≤ 0
