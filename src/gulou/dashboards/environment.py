"""Air and water dashboards: pollutants against GB 3095, river sections against GB 3838 and black-odour bands."""

from __future__ import annotations

from typing import cast

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import statetimeline, timeseries
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from gulou.dashboards import aqi
from gulou.dashboards.common import (
    TZ_CLAUSE,
    InfluxQL,
    base_dashboard,
    dashed_thresholds,
    datasource_ref,
    grid,
    limit_series,
    series,
    single,
    steps,
    tag_variable,
)
from gulou.dashboards.limits import (
    AIR_NAMES,
    WATER_NAMES,
    LimitLine,
    air_limit_lines,
    air_pollutants,
    black_odour,
    black_odour_mappings,
    black_odour_unit,
    gb3838_rated,
    good_day_max_aqi,
    good_day_target,
    grafana_unit,
    water_class_mappings,
    water_classes,
    water_is_lower_bound,
    water_limits,
)

AIR_UID = "gulou-air"
WATER_UID = "gulou-water"
AIR_FILTER = "\"street\" =~ /^$street$/ AND \"device\" =~ /^$device$/"
WATER_FILTER = "\"site\" =~ /^$section$/"
TZ = TZ_CLAUSE
AQI_ROW_H = 8  # the AQI row sits on top of the air dashboard; the pollutant panels start below it


def _limit_lines(panel: timeseries.Panel, limits: list[LimitLine]) -> timeseries.Panel:
    """Dashed threshold lines at the limits, red from the lowest one."""
    lowest = min(line.value for line in limits)
    return dashed_thresholds(panel, steps("green", (lowest, "red")))


def air_hourly(metric: str, x: int, y: int) -> timeseries.Panel:
    """Hourly means of one pollutant per station with its limits drawn and labelled."""
    lines = air_limit_lines(metric)
    targets = [InfluxQL(f'SELECT mean("{metric}") FROM "air" WHERE $timeFilter AND {AIR_FILTER} '
                        'GROUP BY time(1h), "device" fill(none)', "A", alias="$tag_device")]
    for index, line in enumerate(lines):
        targets.append(InfluxQL(limit_series(metric, "air", line.value, line.label), chr(ord("B") + index)))
    panel = series(f"{AIR_NAMES[metric]} 小时均值 hourly mean", *targets, unit=grafana_unit("air_station", metric),
                   description="Hourly mean per station; dashed lines are the GB 3095 class II limits, named in "
                               "the legend (24 h limits for particles, 1 h limits for gases).")
    panel = _limit_lines(panel, lines).grid_pos(grid(x, y, 12, 8))
    for line in lines:
        panel = panel.override_by_name(line.label, [
            model.DynamicConfigValue(id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]}),
            model.DynamicConfigValue(id_val="custom.fillOpacity", value=0),
            model.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": "red"}),
        ])
    return panel


def air_daily() -> timeseries.Panel:
    """Calendar-day (Beijing time) PM2.5 and PM10 means per station against both standards' 24 h limits."""
    targets = [
        InfluxQL(f'SELECT mean("pm25") FROM "air" WHERE $timeFilter AND {AIR_FILTER} '
                 f'GROUP BY time(1d), "device" fill(none) {TZ}', "A", alias="PM2.5 $tag_device"),
        InfluxQL(f'SELECT mean("pm10") FROM "air" WHERE $timeFilter AND {AIR_FILTER} '
                 f'GROUP BY time(1d), "device" fill(none) {TZ}', "B", alias="PM10 $tag_device"),
    ]
    pm25 = sorted(air_limit_lines("pm25"), key=lambda line: line.value)
    pm10 = sorted(line.value for line in air_limit_lines("pm10"))
    named = [f"{line.value:g} ({line.standard})" for line in pm25]
    panel = series("24 小时均值 24 h means", *targets, unit=grafana_unit("air_station", "pm25"),
                   description="Daily means (00:00–24:00 Beijing time). Thresholds: PM2.5 "
                               f"{_joined(named)}; PM10 {' / '.join(f'{v:g}' for v in pm10)}.")
    panel = panel.draw_style(common.GraphDrawStyle.BARS).fill_opacity(60).time_from("now-30d")
    panel = dashed_thresholds(panel, steps("green", *zip((line.value for line in pm25), _warm(len(pm25)),
                                                           strict=True)))
    return panel.grid_pos(grid(0, AQI_ROW_H + 24, 12, 8))


def _joined(items: list[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _warm(count: int) -> tuple[str, ...]:
    """Colours for ``count`` ascending limits, ending in red at the highest."""
    return (("yellow",) * max(0, count - 2) + ("orange", "red"))[-count:]


# The district daily AQI the report job writes (gulou.reports.series): one point per Beijing day.
DISTRICT_AQI = "district_aqi"
DISTRICT_ROW_Y = AQI_ROW_H + 32  # below the daily means and the year's figures


def _district_basis() -> str:
    good = good_day_max_aqi()
    return (f"From the district daily AQI ({DISTRICT_AQI}, written by the report job: gulou report … --series and "
            "the daily push): each pollutant's district value is the mean of the evaluation stations' valid daily "
            "values (GB 3095 §8: 20 valid hours, O3 8 h windows), rated with HJ 633 daily AQI of the date's edition "
            f"including the O3 daily max 1-hour value; a good day has AQI ≤ {good}. Days failing the validity rules "
            "carry no AQI and count in no ratio.")


def good_day_ratio() -> dash.Panel:
    """Year-to-date 优良天数比例 from the district daily AQI series, against the plan's target."""
    target, year = good_day_target()
    query = f'SELECT mean("good") AS "ratio" FROM "{DISTRICT_AQI}" WHERE $timeFilter'
    panel = (
        single("优良天数比例 Good-day ratio (year to date)", InfluxQL(query, "A", alias="优良天数比例"),
               unit="percentunit",
               description=f"Good district days over valid district days this year. {_district_basis()} Green at or "
                           f"above the plan target {target:.0%} ({year}, data/targets.yaml; a placeholder until the "
                           "city's figure is entered), orange within 5 points of it.")
        .time_from("now/y")
        .thresholds(steps("red", (target - 0.05, "orange"), (target, "green")))
        .decimals(1)
        .min(0).max(1)
        .grid_pos(grid(12, AQI_ROW_H + 24, 6, 8))
    )
    return cast(dash.Panel, panel)


def heavy_days() -> dash.Panel:
    """Year-to-date heavy-pollution days (district daily AQI > 200)."""
    query = f'SELECT sum("heavy") AS "days" FROM "{DISTRICT_AQI}" WHERE $timeFilter'
    panel = (
        single("重污染天数 Heavy-pollution days (year to date)", InfluxQL(query, "A", alias="重污染天数"),
               description=f"District days with AQI > 200 (重度污染 and worse) this year. {_district_basis()} The plan "
                           "allows none.")
        .time_from("now/y")
        .thresholds(steps("green", (1.0, "red")))
        .decimals(0)
        .grid_pos(grid(18, AQI_ROW_H + 24, 6, 8))
    )
    return cast(dash.Panel, panel)


def district_daily() -> timeseries.Panel:
    """The district daily AQI as bars in the HJ 633 category colours."""
    from grafana_foundation_sdk.builders.dashboard import FieldColor
    from grafana_foundation_sdk.models.dashboard import FieldColorModeId

    query = f'SELECT "aqi" FROM "{DISTRICT_AQI}" WHERE $timeFilter'
    panel = series("全区日 AQI District daily AQI", InfluxQL(query, "A", alias="全区日AQI"),
                   description=f"One bar per Beijing day. {_district_basis()} {aqi.aqi_description()}")
    panel = panel.draw_style(common.GraphDrawStyle.BARS).fill_opacity(80).decimals(0).min(0).time_from("now-90d")
    panel = panel.color_scheme(FieldColor().mode(FieldColorModeId.THRESHOLDS))
    return panel.thresholds(aqi.aqi_thresholds()).grid_pos(grid(0, DISTRICT_ROW_Y, 24, 8))


def build_air() -> dash.Dashboard:
    """The air dashboard."""
    board = base_dashboard(AIR_UID, "鼓楼智脑 空气 Air quality",
                           "Hourly pollutants per station against GB 3095, daily means and the good-day ratio.")
    board = board.with_variable(tag_variable("street", "街道 Street", "air", "street"))
    board = board.with_variable(tag_variable("device", "站点 Station", "air", "device", "\"street\" =~ /^$street$/"))
    board = board.with_panel(aqi.worst_now(AIR_FILTER, grid(0, 0, 4, 8)))
    board = board.with_panel(aqi.by_station(AIR_FILTER, grid(4, 0, 8, 8)))
    board = board.with_panel(aqi.hourly(AIR_FILTER, grid(12, 0, 12, 8)))
    for index, metric in enumerate(air_pollutants()):
        board = board.with_panel(air_hourly(metric, (index % 2) * 12, AQI_ROW_H + (index // 2) * 8))
    return board.with_panel(air_daily()).with_panel(good_day_ratio()).with_panel(heavy_days()) \
        .with_panel(district_daily())


def water_indicator(metric: str, x: int, y: int) -> timeseries.Panel:
    """One indicator per river section, with the GB 3838 class III/IV/V limits drawn and labelled."""
    targets = [InfluxQL(f'SELECT mean("{metric}") FROM "water" WHERE $timeFilter AND {WATER_FILTER} '
                        'GROUP BY time($__interval), "site" fill(none)', "A", alias="$tag_site")]
    if metric in gb3838_rated():
        limits = water_limits(metric)
        classes = water_classes()
        # Classes III, IV and V: the usual targets (III drinking sources, IV inner rivers) and the last class.
        for offset, index in enumerate(range(2, len(limits))):
            value = limits[index]
            label = f"GB 3838 {classes[index]} 类 {value:g}"
            targets.append(InfluxQL(limit_series(metric, "water", value, label, WATER_FILTER), chr(ord("B") + offset)))
        # Red beyond the class IV limit, the usual inner-river target.
        thresholds = (steps("red", (limits[3], "green")) if water_is_lower_bound(metric)
                      else steps("green", (limits[3], "red")))
    else:
        light, severe, _ = black_odour(metric)
        unit = black_odour_unit(metric)
        targets.append(InfluxQL(limit_series(metric, "water", light, f"轻度黑臭 light < {light:g} {unit}",
                                             WATER_FILTER), "B"))
        targets.append(InfluxQL(limit_series(metric, "water", severe, f"重度黑臭 severe < {severe:g} {unit}",
                                             WATER_FILTER), "C"))
        thresholds = steps("red", (severe, "orange"), (light, "green"))
    panel = series(f"{WATER_NAMES[metric]}", *targets, unit=grafana_unit("water_station", metric),
                   description="Per river section; legend lines are the GB 3838-2002 class limits (III for drinking "
                               "sources, IV for inner rivers are the usual targets) or the black-odour bounds.")
    panel = dashed_thresholds(panel, thresholds).grid_pos(grid(x, y, 12, 8))
    return panel.override_by_regexp("^(GB 3838|轻度|重度).*", [
        model.DynamicConfigValue(id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]}),
        model.DynamicConfigValue(id_val="custom.fillOpacity", value=0),
    ])


def _timeline(title: str, description: str, metrics: list[str], y: int, mappings_for: str) -> statetimeline.Panel:
    panel = (
        statetimeline.Panel()
        .title(title)
        .description(description)
        .datasource(datasource_ref())
        .repeat("section")
        .repeat_direction("v")
        .show_value(common.VisibilityMode.AUTO)
        .merge_values(True)
        .grid_pos(grid(0, y, 24, 6))
    )
    for index, metric in enumerate(metrics):
        panel = panel.with_target(InfluxQL(
            f'SELECT mean("{metric}") FROM "water" WHERE $timeFilter AND {WATER_FILTER} '
            "GROUP BY time(1h) fill(none)", chr(ord("A") + index), alias=WATER_NAMES.get(metric, metric)))
        mappings = water_class_mappings(metric) if mappings_for == "class" else black_odour_mappings(metric)
        panel = panel.override_by_name(WATER_NAMES.get(metric, metric), [
            model.DynamicConfigValue(id_val="mappings", value=mappings),
            model.DynamicConfigValue(id_val="color", value={"mode": "thresholds"}),
        ])
    return panel


def build_water() -> dash.Dashboard:
    """The water dashboard."""
    board = base_dashboard(WATER_UID, "鼓楼智脑 水环境 Water quality",
                           "River sections: indicators against the GB 3838 classes, class over time, black-odour "
                           "status.", time_from="now-7d")
    board = board.with_variable(tag_variable("section", "河段 River section", "water", "site"))
    for index, metric in enumerate(("do", "nh3n", "codmn", "tp", "transparency")):
        board = board.with_panel(water_indicator(metric, (index % 2) * 12, (index // 2) * 8))
    board = board.with_panel(_timeline(
        "水质类别 Class over time — $section",
        "Hourly class of each indicator (GB 3838-2002); the section's class is the worst row.",
        ["do", "nh3n", "codmn", "tp"], 24, "class"))
    return board.with_panel(_timeline(
        "黑臭状态 Black-odour status — $section",
        "Each indicator against the 2015 black-odorous water bands: none / light / severe. Not black-odorous "
        "only when all four are in the 'none' band.",
        ["transparency", "do", "orp", "nh3n"], 30, "odour"))
