"""AQI panels on the ``aqi`` series the rules engine writes (HJ 633 hourly AQI of each station hour)."""

from __future__ import annotations

from typing import cast

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import stat, timeseries
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from gulou.dashboards.common import InfluxQL, dashed_thresholds, range_mappings, series, single, steps
from gulou.dashboards.limits import aqi_bands
from gulou.rules.standards.tables import gb3095

# An hour's AQI is written 10 minutes after the hour ends and stamped at its start: the latest value is up to
# 80 minutes old, so "now" panels look back three hours.
LATEST = "3h"


def hourly_minutes() -> int:
    """Minutes of data a valid hourly value needs (GB 3095 §8)."""
    return int(gb3095().validity["hourly_min_minutes"].value)


def _editions() -> str:
    """Which HJ 633 edition rates which dates, from the rule sets: "2012 edition before 2026-03-01, …"."""
    changes: list[tuple[str, str | None]] = []
    for rule_set in gb3095().rule_sets:
        if not changes or changes[-1][0] != rule_set.method:
            changes.append((rule_set.method, None if rule_set.since is None else rule_set.since.isoformat()))
    parts = []
    for index, (method, since) in enumerate(changes):
        edition = f"{method.rsplit('-', 1)[-1]} edition"
        following = changes[index + 1][1] if index + 1 < len(changes) else None
        if since is None:
            parts.append(f"{edition} before {following}" if following else edition)
        else:
            parts.append(f"{edition} from {since} before {following}" if following else f"{edition} since")
    return ", ".join(parts)


def aqi_description() -> str:
    """How the ``aqi`` series is computed and the category colours, for the panel descriptions."""
    bands = aqi_bands()
    colours = ", ".join(f"{word} {low}–{high} {colour}" if high is not None else f"{word} > {low - 1} {colour}"
                        for low, high, word, colour in bands)
    return (f"Hourly AQI per HJ 633 ({_editions()}): the rules engine rates each station's clock-hour means, "
            f"valid with {hourly_minutes()} minutes of data (1 h columns for gases with the O3 8 h moving mean, 24 h "
            "columns for particles), and writes it as the aqi measurement stamped at the hour's start, once the "
            f"hour is closed (10 minutes after its end). Colours: {colours}.")


def aqi_thresholds() -> dash.ThresholdsConfig:
    """The standard category colours from the first AQI of each category (0/51/101/151/201/301)."""
    bands = aqi_bands()
    return steps(bands[0][3], *((float(low), colour) for low, _high, _word, colour in bands[1:]))


def aqi_mappings() -> list[model.ValueMapping]:
    """AQI ranges to their category words (优 … 严重污染) in the category colour."""
    return range_mappings([(float(low), None if high is None else float(high), word, colour)
                           for low, high, word, colour in aqi_bands()])


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
               description="Highest latest hourly AQI over the selected stations (last 3 hours), and its category. "
                           + aqi_description())
        .text_mode(common.BigValueTextMode.VALUE)
        .orientation(common.VizOrientation.VERTICAL)
        .decimals(0)
        .thresholds(aqi_thresholds())
        .override_by_query("B", [model.DynamicConfigValue(id_val="mappings", value=aqi_mappings())])
        .time_from(LATEST)
        .grid_pos(pos)
    )
    return cast(dash.Panel, panel)


def by_station(where: str, pos: model.GridPos) -> dash.Panel:
    """Each station's latest AQI shown as its category word in the category colour."""
    panel: stat.Panel = (
        single("各站 AQI 类别 AQI category by station",
               InfluxQL(latest_query(where), alias="$tag_device"),
               description="Latest hourly AQI of each station in the last 3 hours, shown as its category word "
                           "under the station id. " + aqi_description())
        .text_mode(common.BigValueTextMode.VALUE_AND_NAME)
        .decimals(0)
        .thresholds(aqi_thresholds())
        .mappings(aqi_mappings())
        .time_from(LATEST)
        .grid_pos(pos)
    )
    return cast(dash.Panel, panel)


def hourly(where: str, pos: model.GridPos) -> timeseries.Panel:
    """Hourly maximum AQI per station with the category edges as dashed coloured lines."""
    query = f'SELECT max("aqi") FROM "aqi" WHERE $timeFilter AND {where} GROUP BY time(1h), "device" fill(none)'
    panel = series("小时 AQI Hourly AQI", InfluxQL(query, alias="$tag_device"),
                   description="Hourly AQI of each station. Dashed lines at the category edges. "
                               + aqi_description())
    return dashed_thresholds(panel.decimals(0).min(0), aqi_thresholds()).grid_pos(pos)
