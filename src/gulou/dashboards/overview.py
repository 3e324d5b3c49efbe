"""The Smart Brain overview: map of devices, air, water, bins, parking, buildings and alerts at a glance."""

from __future__ import annotations

from typing import Any, cast

from grafana_foundation_sdk.builders import bargauge, geomap
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models import geomap as geomap_model

from gulou.dashboards import aqi
from gulou.dashboards.common import (
    GAZETTEER_PATH,
    InfluxQL,
    base_dashboard,
    datasource_ref,
    grid,
    single,
    steps,
    tabular,
    tag_variable,
)
from gulou.dashboards.limits import percent, rule_limit, tier_fractions, water_thresholds
from gulou.devices.registry import Registry

UID = "gulou-overview"
STREET = "\"street\" =~ /^$street$/"

# "Active" alert = the latest event of a (rule, device) pair says firing. InfluxQL has no window
# functions, so a subquery takes the last event per pair and the outer query keeps the firing ones.
ACTIVE_ALERTS = (
    'SELECT last("value") AS "v", "state", "site" AS "b" FROM "alerts" WHERE $timeFilter{extra} '
    'GROUP BY "rule_id", "device", "severity"'
)


def active_alert_query(outer: str, group: str, extra: str = "") -> str:
    """Count or list active alerts from the last event of every (rule, device) pair."""
    inner = ACTIVE_ALERTS.format(extra=f" AND {extra}" if extra else "")
    return f"SELECT {outer} FROM ({inner}) WHERE \"state\" = 'firing' GROUP BY {group}"


def _markers(name: str, ref_id: str, colour_field: str, size: float) -> common_builders.MapLayerOptions:
    style: dict[str, Any] = {
        "color": {"field": colour_field, "fixed": "dark-green"},
        "opacity": 0.85,
        "size": {"fixed": size, "min": 2, "max": 15},
        "symbol": {"fixed": "img/icons/marker/circle.svg", "mode": "fixed"},
        "textConfig": {"fontSize": 10, "offsetY": -12, "textAlign": "center", "textBaseline": "middle"},
    }
    return (
        common_builders.MapLayerOptions()
        .type("markers")
        .name(name)
        .config({"showLegend": True, "style": style})
        .location(common_builders.FrameGeometrySource().mode(common.FrameGeometrySourceMode.LOOKUP)
                  .lookup("device").gazetteer(GAZETTEER_PATH))
        .filter_data({"id": "byRefId", "options": ref_id})
        .tooltip(True)
    )


def device_map() -> geomap.Panel:
    """Geomap: every device at its registry coordinates, green online / red offline, alerts on top."""
    status = InfluxQL(
        'SELECT last("online") AS "online", last("battery") AS "battery" FROM "device_status" '
        f'WHERE $timeFilter AND {STREET} GROUP BY "device", "domain", "street"', "A", table=True)
    alerts = InfluxQL(active_alert_query('count("v") AS "active_alerts"', '"device"'), "B", table=True)
    view = geomap_model.MapViewConfig(id_val="coords", lat=cast(int, 26.085), lon=cast(int, 119.292), zoom=13)
    return (
        geomap.Panel()
        .title("设备状态与告警 Devices and active alerts")
        .description("Each device at its registry coordinates (gazetteer generated from the registry). "
                     "Green: online, red: offline (last device_status). Orange/red rings: devices with an "
                     "active alert. Click a marker for device, domain and street.")
        .datasource(datasource_ref())
        .with_target(status)
        .with_target(alerts)
        .grid_pos(grid(0, 0, 12, 14))
        .view(_Fixed(view))
        .controls(geomap.ControlsOptions().show_zoom(True).mouse_wheel_zoom(True).show_scale(True))
        .basemap(common_builders.MapLayerOptions().type("default").name("Basemap"))
        .layers([_markers("设备 Devices", "A", "online", 6), _markers("告警 Active alerts", "B", "active_alerts", 12)])
        .tooltip(geomap.TooltipOptions().mode(geomap_model.TooltipMode.DETAILS))
        .thresholds(steps("red", (1, "green")))
        .override_by_name("active_alerts", [
            model.DynamicConfigValue(id_val="thresholds", value=model.ThresholdsConfig(
                mode=model.ThresholdsMode.ABSOLUTE,
                steps=[model.Threshold(value=None, color="transparent"), model.Threshold(value=1, color="orange"),
                       model.Threshold(value=3, color="red")])),
        ])
    )


class _Fixed(cogbuilder.Builder[geomap_model.MapViewConfig]):
    """Wrap a ready model as a builder (the SDK types lat/lon as int; Grafana takes floats)."""

    def __init__(self, value: geomap_model.MapViewConfig) -> None:
        self._value = value

    def build(self) -> geomap_model.MapViewConfig:
        return self._value


def aqi_now() -> list[dash.Panel]:
    """The worst station's AQI now and every station's AQI category, from the rules engine's ``aqi`` series."""
    return [aqi.worst_now(STREET, grid(12, 0, 4, 5)), aqi.by_station(STREET, grid(16, 0, 8, 5))]


def water_now(registry: Registry) -> dash.Panel:
    """Latest water indicators per river section, coloured by GB 3838 class; target class in the name."""
    names = {
        s.id: (f"{s.name} ({s.id}) · 目标 {s.target_class} 类", "text")
        for s in registry.sites.values() if s.kind == "river_section"
    }
    query = (
        'SELECT last("do") AS "DO", last("nh3n") AS "NH3-N", last("codmn") AS "CODMn", last("tp") AS "TP" '
        'FROM "water" WHERE $timeFilter AND ' + STREET + ' GROUP BY "site"'
    )
    panel = tabular("河段水质与目标 Water class by section", InfluxQL(query, table=True),
                    description="Latest reading per river section. Cell colour = GB 3838-2002 class of that "
                                "indicator (blue I–II, green III, yellow IV, orange V, red 劣V); the section's "
                                "class is its worst cell. The target class comes from the registry.")
    panel = panel.time_from("6h").grid_pos(grid(12, 5, 12, 9)).override_by_name("site", [
        model.DynamicConfigValue(id_val="mappings", value=[model.ValueMap(options={
            k: model.ValueMappingResult(text=v[0], index=i) for i, (k, v) in enumerate(sorted(names.items()))})]),
        model.DynamicConfigValue(id_val="displayName", value="河段 section"),
    ])
    for name, metric in (("DO", "do"), ("NH3-N", "nh3n"), ("CODMn", "codmn"), ("TP", "tp")):
        panel = panel.override_by_name(name, [
            model.DynamicConfigValue(id_val="thresholds", value=water_thresholds(metric).build()),
            model.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"}),
        ])
    return cast(dash.Panel, panel.hide_time_override(False))


def counters() -> list[dash.Panel]:
    """Stat panels: bins to dispatch, free parking spots, active alerts by severity, buildings by tier."""
    dispatch_at = rule_limit("waste-bin-dispatch")
    yellow, orange, red = tier_fractions()
    bins = single(
        f"待清运垃圾桶 Bins to dispatch (≥ {percent(dispatch_at)})",
        InfluxQL('SELECT count("f") AS "bins" FROM (SELECT last("fill_level") AS "f" FROM "waste" '
                 "WHERE $timeFilter AND \"type\" = 'smart_bin' AND " + STREET + ' GROUP BY "device") '
                 f'WHERE "f" >= {dispatch_at:g}'),
        description=f"Smart bins whose latest fill level is at least {percent(dispatch_at)} (dispatch rule, "
                    "standards.md §4).",
    ).thresholds(steps("green", (1, "orange"), (10, "red"))).grid_pos(grid(0, 14, 6, 5))
    spots = single(
        "空闲车位 Free parking spots",
        InfluxQL('SELECT sum("free") AS "free" FROM (SELECT last("total_spots") - last("occupied_spots") AS "free" '
                 'FROM "parking" WHERE $timeFilter AND ' + STREET + ' GROUP BY "device")'),
        description="Sum over lots of total minus occupied spots, from each lot's latest report.",
    ).thresholds(steps("red", (50, "orange"), (200, "green"))).grid_pos(grid(6, 14, 6, 5))
    severities = (
        bargauge.Panel()
        .title("活动告警 Active alerts by severity")
        .description("Alerts whose latest event for a (rule, device) pair is firing, counted per severity.")
        .datasource(datasource_ref())
        .with_target(InfluxQL(active_alert_query('count("v") AS "alerts"', '"severity"'), alias="$tag_severity"))
        .thresholds(steps("green", (1, "orange"), (5, "red")))
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .grid_pos(grid(12, 14, 6, 5))
    )
    buildings = (
        bargauge.Panel()
        .title("房屋预警 Buildings at each warning tier")
        .description(f"Buildings (sites) with an active housing-safety alert, per severity tier (yellow "
                     f"~{percent(yellow)}, orange ~{percent(orange)}, red ≥ {percent(red)} of the control value; "
                     "tiers are set by the rules engine).")
        .datasource(datasource_ref())
        .with_target(InfluxQL(active_alert_query('count(distinct("b")) AS "buildings"', '"severity"',
                                                 "\"domain\" = 'structure'"), alias="$tag_severity"))
        .thresholds(steps("green", (1, "orange"), (3, "red")))
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .grid_pos(grid(18, 14, 6, 5))
    )
    return [cast(dash.Panel, p) for p in (bins, spots, severities, buildings)]


def build(registry: Registry) -> dash.Dashboard:
    """The overview dashboard."""
    board = base_dashboard(UID, "鼓楼智脑 总览 Smart Brain overview",
                           "Where things stand now across Gulou: devices, air, water, waste, parking, housing safety "
                           "and alerts.", time_from="now-6h")
    board = board.with_variable(tag_variable("street", "街道 Street", "device_status", "street"))
    for panel in (device_map(), *aqi_now(), water_now(registry), *counters()):
        board = board.with_panel(panel)
    return board
