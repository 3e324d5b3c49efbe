"""AQI panels on the ``aqi`` series the rules engine writes (HJ 633 hourly AQI of every air reading)."""

from __future__ import annotations

from typing import cast

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import stat, timeseries
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from gulou.dashboards.common import AQI_BANDS, InfluxQL, dashed_thresholds, range_mappings, series, single, steps

# First AQI of each category after 优 (0–50): 良 51–100, 轻度 101–150, 中度 151–200, 重度 201–300, 严重 > 300.
AQI_STEPS: tuple[int, int, int, int, int] = (51, 101, 151, 201, 301)
AQI_DESCRIPTION = (
    "AQI per HJ 633 (2012 edition before 2026-03-01, 2026 edition since), computed by the rules engine for "
    "every air reading (real-time rating: 1 h columns for gases, 24 h columns for particles) and written as the "
    "aqi measurement. Colours: "
    "优 0–50 #00E400, 良 51–100 #FFFF00, 轻度污染 101–150 #FF7E00, 中度污染 151–200 #FF0000, "
    "重度污染 201–300 #99004C, 严重污染 > 300 #7E0023."
)


def aqi_thresholds() -> dash.ThresholdsConfig:
    """The standard category colours at AQI 0/51/101/151/201/301."""
    return steps(AQI_BANDS[0][1], *((float(v), band[1]) for v, band in zip(AQI_STEPS, AQI_BANDS[1:], strict=True)))


def aqi_mappings() -> list[model.ValueMapping]:
    """AQI ranges to their category words (优 … 严重污染) in the category colour."""
    lows: list[float | None] = [0.0, *(float(v) for v in AQI_STEPS)]
    highs: list[float | None] = [float(v - 1) for v in AQI_STEPS] + [None]
    return range_mappings([(low, high, band[2], band[1]) for low, high, band in zip(lows, highs, AQI_BANDS,
                                                                                   strict=True)])


def latest_query(where: str) -> str:
    """Latest AQI of each station."""
    return f'SELECT last("aqi") FROM "aqi" WHERE $timeFilter AND {where} GROUP BY "device"'


def worst_query(where: str) -> str:
    """The highest of the stations' latest AQI."""
    return f'SELECT max("a") FROM (SELECT last("aqi") AS "a" FROM "aqi" WHERE $timeFilter AND {where} ' \
           'GROUP BY "device")'


def worst_now(where: str, pos: model.GridPos) -> dash.Panel:
    """The worst station's latest AQI, as a number and as its category word, in the category colour."""
    panel = (
        single("AQI 最差站点 Worst station now",
               InfluxQL(worst_query(where), "A", alias="AQI"),
               InfluxQL(worst_query(where), "B", alias="类别"),
               description="Highest latest AQI over the selected stations (last hour), and its category. "
                           + AQI_DESCRIPTION)
        .text_mode(common.BigValueTextMode.VALUE)
        .orientation(common.VizOrientation.VERTICAL)
        .decimals(0)
        .thresholds(aqi_thresholds())
        .override_by_query("B", [model.DynamicConfigValue(id_val="mappings", value=aqi_mappings())])
        .time_from("1h")
        .grid_pos(pos)
    )
    return cast(dash.Panel, panel)


def by_station(where: str, pos: model.GridPos) -> dash.Panel:
    """Each station's latest AQI shown as its category word in the category colour."""
    panel: stat.Panel = (
        single("各站 AQI 类别 AQI category by station",
               InfluxQL(latest_query(where), alias="$tag_device"),
               description="Latest AQI of each station in the last hour, shown as its category word under the "
                           "station id. " + AQI_DESCRIPTION)
        .text_mode(common.BigValueTextMode.VALUE_AND_NAME)
        .decimals(0)
        .thresholds(aqi_thresholds())
        .mappings(aqi_mappings())
        .time_from("1h")
        .grid_pos(pos)
    )
    return cast(dash.Panel, panel)


def hourly(where: str, pos: model.GridPos) -> timeseries.Panel:
    """Hourly maximum AQI per station with the category edges as dashed coloured lines."""
    query = f'SELECT max("aqi") FROM "aqi" WHERE $timeFilter AND {where} GROUP BY time(1h), "device" fill(none)'
    panel = series("小时 AQI Hourly AQI", InfluxQL(query, alias="$tag_device"),
                   description="Highest AQI of each station per hour. Dashed lines at the category edges. "
                               + AQI_DESCRIPTION)
    return dashed_thresholds(panel.decimals(0).min(0), aqi_thresholds()).grid_pos(pos)
