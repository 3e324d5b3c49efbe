"""Waste, parking and housing-safety dashboards."""

from __future__ import annotations

from typing import cast

from grafana_foundation_sdk.builders import bargauge, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from gulou.dashboards.common import (
    TZ_CLAUSE,
    InfluxQL,
    base_dashboard,
    dashed_thresholds,
    datasource_ref,
    grid,
    limit_series,
    series,
    steps,
    tabular,
    tag_variable,
)
from gulou.dashboards.limits import (
    grafana_unit,
    percent,
    rule_limit,
    strictest_tilt,
    structure_limit,
    tier_percent_text,
    tier_thresholds,
    tilt_limits_text,
)

WASTE_UID = "gulou-waste"
PARKING_UID = "gulou-parking"
STRUCTURE_UID = "gulou-structure"
STREET = "\"street\" =~ /^$street$/"
DEVICE = "\"device\" =~ /^$device$/"


def _dashed() -> list[model.DynamicConfigValue]:
    """Field overrides that draw a labelled limit series as a dashed red line."""
    return [model.DynamicConfigValue(id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]}),
            model.DynamicConfigValue(id_val="custom.fillOpacity", value=0),
            model.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": "red"})]


def build_waste() -> dash.Dashboard:
    """The waste dashboard: fill levels, overflow events, sorting correct rate per street."""
    board = base_dashboard(WASTE_UID, "鼓楼智脑 垃圾分类 Waste",
                           "Smart-bin fill levels and overflows; sorting correct rate per street against 95 %.")
    board = board.with_variable(tag_variable("street", "街道 Street", "waste", "street"))
    board = board.with_variable(tag_variable("device", "垃圾桶 Bin", "waste", "device",
                                             f"{STREET} AND \"type\" = 'smart_bin'"))
    dispatch_at, overflow_at = rule_limit("waste-bin-dispatch"), rule_limit("waste-bin-overflow")
    sorting_target = rule_limit("waste-sorting-rate-daily")
    fill = series("满溢度 Fill level per bin",
                  InfluxQL('SELECT max("fill_level") FROM "waste" WHERE $timeFilter AND "type" = \'smart_bin\' '
                           f'AND {STREET} AND {DEVICE} GROUP BY time($__interval), "device" fill(none)',
                           alias="$tag_device"),
                  unit="percentunit",
                  description=f"Dispatch a truck at {percent(dispatch_at)}, overflow at {percent(overflow_at)} "
                              "(dashed lines).")
    fill = dashed_thresholds(fill.min(0).max(1), steps("green", (dispatch_at, "orange"), (overflow_at, "red")))
    overflow = series("溢出事件 Overflow events per hour",
                      InfluxQL('SELECT count("fill_level") FROM "waste" WHERE $timeFilter AND '
                               f'"fill_level" >= {overflow_at:g} AND {STREET} GROUP BY time(1h), "street" fill(0)',
                               alias="$tag_street"),
                      description=f"Readings at or above {percent(overflow_at)} fill, per street and hour: bins "
                                  "left too long.")
    overflow = overflow.draw_style(common.GraphDrawStyle.BARS).stacking(
        common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
    dispatch = tabular("待清运 Bins to dispatch now", InfluxQL(
        'SELECT "f" AS "fill_level" FROM (SELECT last("fill_level") AS "f" FROM "waste" WHERE $timeFilter '
        f'AND "type" = \'smart_bin\' AND {STREET} GROUP BY "device", "street", "site", "category") '
        f'WHERE "f" >= {dispatch_at:g} GROUP BY "device", "street", "site", "category"', table=True),
        description=f"Bins whose latest fill level is at least {percent(dispatch_at)}: the dispatch list.").unit(
        "percentunit").thresholds(steps("orange", (overflow_at, "red")))
    rate = (
        bargauge.Panel()
        .title("分类准确率 Sorting correct rate per street")
        .description(f"sum(correct) / sum(inspected) over the time range, per street; plan target ≥ "
                     f"{percent(sorting_target)}.")
        .datasource(datasource_ref())
        .with_target(InfluxQL('SELECT sum("correct") / sum("inspected") AS "rate" FROM "waste" '
                              f'WHERE $timeFilter AND "type" = \'sorting_point\' AND {STREET} GROUP BY "street"',
                              alias="$tag_street"))
        .unit("percentunit").min(0.8).max(1)
        .thresholds(steps("red", (0.9, "orange"), (sorting_target, "green")))
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    trend = series("分类准确率趋势 Correct rate by day",
                   InfluxQL('SELECT sum("correct") / sum("inspected") FROM "waste" WHERE $timeFilter AND '
                            f'"type" = \'sorting_point\' AND {STREET} GROUP BY time(1d), "street" fill(none) '
                            f"{TZ_CLAUSE}", alias="$tag_street"),
                   unit="percentunit",
                   description=f"Daily correct rate per street; dashed line at the {percent(sorting_target)} target.")
    trend = dashed_thresholds(trend, steps("red", (sorting_target, "green")))
    for panel, pos in ((fill, grid(0, 0, 12, 8)), (overflow, grid(12, 0, 12, 8)), (dispatch, grid(0, 8, 12, 8)),
                       (rate, grid(12, 8, 12, 8)), (trend, grid(0, 16, 24, 8))):
        board = board.with_panel(cast(dash.Panel, panel.grid_pos(pos)))
    return board


def build_parking() -> dash.Dashboard:
    """The parking dashboard: occupancy per lot and street, free spots, time until full."""
    tight, full = rule_limit("parking-tight"), rule_limit("parking-full")

    def occupancy() -> dash.ThresholdsConfig:
        return steps("green", (tight, "orange"), (full, "red"))

    board = base_dashboard(PARKING_UID, "鼓楼智脑 停车 Parking",
                           "Occupancy per lot and per street, free spots now and the time until each lot is full.")
    board = board.with_variable(tag_variable("street", "街道 Street", "parking", "street"))
    board = board.with_variable(tag_variable("device", "停车场 Lot", "parking", "device", STREET))
    per_lot = series("占用率 Occupancy per lot",
                     InfluxQL('SELECT mean("occupied_spots") / mean("total_spots") FROM "parking" WHERE $timeFilter '
                              f'AND {STREET} AND {DEVICE} GROUP BY time($__interval), "device" fill(none)',
                              alias="$tag_device"),
                     unit="percentunit", description=f"Tight at {percent(tight)}, full at {percent(full)} (dashed).")
    per_lot = dashed_thresholds(per_lot.min(0).max(1), occupancy())
    inner = ('SELECT mean("occupied_spots") AS "o", mean("total_spots") AS "t" FROM "parking" WHERE $timeFilter '
             f'AND {STREET} GROUP BY time($__interval), "device", "street"')
    per_street = series("街道占用率 Occupancy by street",
                        InfluxQL(f'SELECT sum("o") / sum("t") FROM ({inner}) GROUP BY time($__interval), "street" '
                                 "fill(none)", alias="$tag_street"),
                        unit="percentunit", description="Occupied over total spots of all lots in the street.")
    per_street = dashed_thresholds(per_street.min(0).max(1), occupancy())
    free = tabular("空闲车位 Free spots now", InfluxQL(
        'SELECT last("total_spots") - last("occupied_spots") AS "free", last("occupied_spots") / '
        'last("total_spots") AS "occupancy" FROM "parking" WHERE $timeFilter AND ' + STREET
        + ' GROUP BY "device", "street", "lot_type"', table=True),
        description="Latest report per lot.").override_by_name("occupancy", [
            model.DynamicConfigValue(id_val="unit", value="percentunit"),
            model.DynamicConfigValue(id_val="thresholds", value=occupancy().build()),
            model.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"}),
        ])
    rates = ('SELECT derivative(mean("occupied_spots"), 1h) AS "rate", mean("total_spots") - mean("occupied_spots") '
             f'AS "free" FROM "parking" WHERE $timeFilter AND {STREET} GROUP BY time(15m), "device"')
    to_full = tabular("预计满位时间 Time to full", InfluxQL(
        f'SELECT last("free") / last("rate") AS "hours_to_full", last("rate") AS "filling_per_hour" FROM ({rates}) '
        'WHERE "rate" > 0 GROUP BY "device"', table=True),
        description="For lots that are filling: free spots divided by the last 15-minute fill rate (spots per "
                    "hour). Lots that are emptying are not listed.").override_by_name("hours_to_full", [
            model.DynamicConfigValue(id_val="unit", value="h"),
            model.DynamicConfigValue(id_val="thresholds", value=steps("red", (0.5, "orange"), (2, "green")).build()),
            model.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"}),
        ])
    for panel, pos in ((per_lot, grid(0, 0, 12, 9)), (per_street, grid(12, 0, 12, 9)), (free, grid(0, 9, 12, 9)),
                       (to_full, grid(12, 9, 12, 9))):
        board = board.with_panel(cast(dash.Panel, panel.grid_pos(pos)))
    return board


def _structure_panel(title: str, select: str, key: str, unit: str, description: str) -> timeseries.Panel:
    line = structure_limit(key)
    metric = "settlement" if key == "settlement_rate" else ("tilt_x" if key == "tilt" else key)
    panel = series(title,
                   InfluxQL(f'SELECT {select} FROM "structure" WHERE $timeFilter AND {STREET} AND '
                            '"site" =~ /^$building$/ GROUP BY time($__interval), "site", "device" fill(none)',
                            alias="$tag_site $tag_device"),
                   InfluxQL(limit_series(metric, "structure", line.value, line.label), "B"),
                   unit=unit, description=f"{description} Yellow/orange/red at {tier_percent_text()} % of the "
                                          "control value.")
    return dashed_thresholds(panel, tier_thresholds(line.value)).override_by_name(line.label, _dashed())


def build_structure() -> dash.Dashboard:
    """The housing-safety dashboard: tilt, crack width, settlement, vibration per building against the tiers."""
    board = base_dashboard(STRUCTURE_UID, "鼓楼智脑 房屋安全 Housing safety",
                           "Monitored old buildings: tilt, cracks, settlement and vibration against the warning tiers.",
                           time_from="now-7d")
    board = board.with_variable(tag_variable("street", "街道 Street", "structure", "street"))
    board = board.with_variable(tag_variable("building", "房屋 Building", "structure", "site", STREET))
    tilt = ('tan(sqrt(pow(mean("tilt_x"), 2) + pow(mean("tilt_y"), 2)) * 0.017453292519943295) * 100')
    strictest = f"{strictest_tilt()[0]}+"
    crack = structure_limit("crack_width").value
    settle = structure_limit("settlement_rate").value
    ppv = structure_limit("vibration").value
    panels = [
        _structure_panel("倾斜率 Tilt ratio", tilt, "tilt", "percent",
                         f"tan of the resultant inclination, in %. Dangerous above {tilt_limits_text()} "
                         f"(JGJ 125-2016); the tiers use the {strictest} storey limit."),
        _structure_panel("裂缝宽度 Crack width", 'max("crack_width")', "crack_width",
                         grafana_unit("structure_monitor", "crack_width"),
                         "Widest reading per interval; masonry compression cracks are dangerous above "
                         f"{crack:.1f} mm."),
        _structure_panel("沉降速率 Settlement rate", 'derivative(mean("settlement"), 1d)', "settlement_rate",
                         grafana_unit("structure_monitor", "settlement"),
                         f"Change of cumulative settlement per day; dangerous above {settle:g} mm/day under adjacent "
                         "works."),
        _structure_panel("振动 Vibration (PPV)", 'max("vibration")', "vibration",
                         grafana_unit("structure_monitor", "vibration"),
                         f"Peak particle velocity; old houses are allowed about {ppv:g} mm/s (70 % of GB 50868)."),
    ]
    settlement = series("累计沉降 Cumulative settlement",
                        InfluxQL(f'SELECT mean("settlement") FROM "structure" WHERE $timeFilter AND {STREET} AND '
                                 '"site" =~ /^$building$/ GROUP BY time($__interval), "site", "device" fill(none)',
                                 alias="$tag_site $tag_device"),
                        unit=grafana_unit("structure_monitor", "settlement"),
                        description="Settlement since installation; read with the rate panel.")
    for index, panel in enumerate([*panels, settlement]):
        board = board.with_panel(panel.grid_pos(grid((index % 2) * 12, (index // 2) * 8, 12, 8)))
    return board
