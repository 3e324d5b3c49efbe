"""Station readings' line protocol in a real InfluxDB 1.x: the period tag, flags as strings, invalid values apart.

Debian's influxd predates the v2 write API the sink speaks, so the lines go through its 1.x ``/write``.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from gulou.devices.base import Period
from gulou.tsdb.line_protocol import line_protocol
from gulou.tsdb.records import Batch, Point
from tests.integration.dashboards.conftest import Influx, influxd

pytestmark = pytest.mark.integration
__all__ = ["influxd"]  # the fixture, shared with the dashboards' tests
HOUR_MS = (int(time.time()) // 3600 - 2) * 3_600_000


def _point(period: Period, pm25: float, **station: Any) -> Point:
    return Point("aq-001", "air", "air_station", "温泉街道", "air-wq-01", HOUR_MS, {"pm25": pm25}, None, {}, period,
                 **station)


def test_station_fields_survive_the_line_protocol(influxd: Influx) -> None:
    influxd.write(line_protocol(Batch(points=[
        _point("rtd", 38.0, flags={"pm25": "N", "so2": "C"}, invalid={"so2": 8.0}),
        _point("hour", 41.5, flags={"pm25": "N", "so2": "C"}, invalid={"so2": 9.0}, backfill=True),
    ])))
    where = f"\"device\" = 'aq-001' AND time >= {HOUR_MS}ms"
    hourly = influxd.query(f'SELECT "pm25", "pm25_flag", "so2", "so2_invalid", "so2_flag", "backfill" FROM "air" '
                           f"WHERE {where} AND \"period\" = 'hour'")
    [series] = hourly["results"][0]["series"]
    assert series["values"] == [[HOUR_MS, 41.5, "N", None, 9.0, "C", True]]
    # Real-time points carry no period tag: a panel that leaves the means out asks for the empty tag.
    real_time = influxd.query(f"SELECT \"pm25\", \"so2_invalid\" FROM \"air\" WHERE {where} AND \"period\" = ''")
    assert real_time["results"][0]["series"][0]["values"] == [[HOUR_MS, 38.0, 8.0]]
    # A calibration value is never under the metric's own name, so a mean of so2 has nothing to average.
    mean = influxd.query(f'SELECT mean("so2") FROM "air" WHERE {where}')
    assert "series" not in mean["results"][0]
