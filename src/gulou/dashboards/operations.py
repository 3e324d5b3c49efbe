"""Alerts and pipeline-health dashboards."""

from __future__ import annotations

from typing import cast

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from gulou.dashboards import workflow
from gulou.dashboards.common import (
    TZ_CLAUSE,
    InfluxQL,
    base_dashboard,
    dashed_thresholds,
    grid,
    series,
    steps,
    tabular,
    tag_variable,
    value_mappings,
)

ALERTS_UID = "gulou-alerts"
PIPELINE_UID = "gulou-pipeline"
SEVERITY_COLOURS = {
    "critical": ("critical", "dark-red"), "high": ("high", "red"), "medium": ("medium", "orange"),
    "low": ("low", "yellow"), "informational": ("informational", "blue"),
}
ALERT_FILTER = "\"domain\" =~ /^$domain$/ AND \"street\" =~ /^$street$/"


def _severity_cells() -> list[model.DynamicConfigValue]:
    return [model.DynamicConfigValue(id_val="mappings", value=value_mappings(SEVERITY_COLOURS)),
            model.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"})]


def build_alerts() -> dash.Dashboard:
    """The alerts dashboard: active alerts, recent events, counts over time."""
    board = base_dashboard("gulou-alerts", "鼓楼智脑 告警 Alerts",
                           "Alerts raised by the rules engine: what is firing now and what happened recently.")
    board = board.with_variable(tag_variable("domain", "领域 Domain", "alerts", "domain"))
    board = board.with_variable(tag_variable("street", "街道 Street", "alerts", "street"))
    board = board.with_variable(workflow.api_url_variable())
    inner = ('SELECT last("value") AS "value", "limit", "exceedance", "message", "standard", "state" FROM "alerts" '
             f'WHERE $timeFilter AND {ALERT_FILTER} '
             'GROUP BY "rule_id", "device", "severity", "domain", "street", "site"')
    active = tabular("活动告警 Active alerts", InfluxQL(
        f'SELECT "value", "limit", "exceedance", "message", "standard" FROM ({inner}) WHERE "state" = \'firing\' '
        'GROUP BY "rule_id", "device", "severity", "domain", "street", "site"', table=True),
        description="Every (rule, device) pair whose latest event is firing: the work queue. exceedance is the "
                    "超标倍数 (C − limit) / limit.").override_by_name("severity", _severity_cells())
    recent = tabular("最近告警事件 Recent alert events", InfluxQL(
        'SELECT "severity", "state", "domain", "street", "site", "device", "rule_id", "message", "value", "limit", '
        f'"exceedance", "standard" FROM "alerts" WHERE $timeFilter AND {ALERT_FILTER} ORDER BY time DESC LIMIT 500',
        table=True), description="Firing and resolved events, newest first (at most 500).").override_by_name(
        "severity", _severity_cells()).override_by_name("state", [
            model.DynamicConfigValue(id_val="mappings", value=value_mappings(
                {"firing": ("firing 告警中", "red"), "resolved": ("resolved 已恢复", "green")})),
            model.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-text"})])
    counts = series("告警数 Alert events per hour by severity", InfluxQL(
        f'SELECT count("value") FROM "alerts" WHERE $timeFilter AND {ALERT_FILTER} AND "state" = \'firing\' '
        'GROUP BY time(1h), "severity" fill(0)', alias="$tag_severity"),
        description="Newly fired alerts per hour.").draw_style(common.GraphDrawStyle.BARS).stacking(
        common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
    by_domain = series("各领域告警 Alert events per day by domain", InfluxQL(
        f'SELECT count("value") FROM "alerts" WHERE $timeFilter AND {ALERT_FILTER} AND "state" = \'firing\' '
        f"GROUP BY time(1d), \"domain\" fill(0) {TZ_CLAUSE}", alias="$tag_domain"),
        description="Which domain keeps the operators busy.").draw_style(common.GraphDrawStyle.BARS)
    # Who handles what (the workflow database) first; the engine's events from InfluxDB below.
    handling = workflow.workflow_table()
    for panel, pos in ((handling, grid(0, 0, 24, 10)), (active, grid(0, 10, 24, 10)), (recent, grid(0, 20, 24, 10)),
                       (counts, grid(0, 30, 12, 8)), (by_domain, grid(12, 30, 12, 8))):
        board = board.with_panel(cast(dash.Panel, panel.grid_pos(pos)))
    return board


def build_pipeline() -> dash.Dashboard:
    """The pipeline-health dashboard: ingest rate, rejections, spool, reconnects, completeness per device."""
    board = base_dashboard(PIPELINE_UID, "鼓楼智脑 数据链路 Pipeline health",
                           "Collectors and data completeness: is every device's data arriving and being stored?")
    board = board.with_variable(tag_variable("collector", "采集器 Collector", "pipeline_health", "collector"))
    board = board.with_variable(tag_variable("domain", "领域 Domain", "completeness", "domain"))
    collector = "\"collector\" =~ /^$collector$/"
    rate = series("接入速率 Ingest rate", InfluxQL(
        f'SELECT mean("msgs_per_s") FROM "pipeline_health" WHERE $timeFilter AND {collector} '
        'GROUP BY time($__interval), "collector" fill(none)', alias="$tag_collector"),
        unit="reqps", description="Messages received per second by each collector.")
    flows = series("存储与拒收 Stored / rejected / spooled per minute", *(
        InfluxQL(f'SELECT non_negative_derivative(max("{f}"), 1m) FROM "pipeline_health" WHERE $timeFilter '
                 f'AND {collector} GROUP BY time($__interval), "collector" fill(none)', ref,
                 alias=f"{f} $tag_collector")
        for ref, f in (("A", "stored"), ("B", "rejected"), ("C", "spooled"))),
        description="Per-minute rates from the collectors' running totals (a restart resets a total; the "
                    "non-negative derivative skips the drop).")
    rejected = series("按领域拒收 Rejected by domain", InfluxQL(
        'SELECT sum("rejected") FROM "completeness" WHERE $timeFilter AND "domain" =~ /^$domain$/ '
        'GROUP BY time(1h), "domain" fill(0)', alias="$tag_domain"),
        description="Rejected messages per hour and domain. The reason of each rejection is kept with the "
                    "message in the dead-letter store.").draw_style(common.GraphDrawStyle.BARS)
    spool = series("缓存深度 Spool depth", InfluxQL(
        f'SELECT last("spool_bytes") FROM "pipeline_health" WHERE $timeFilter AND {collector} '
        'GROUP BY time($__interval), "collector" fill(none)', alias="$tag_collector"),
        unit="bytes", description="Bytes waiting in the disk spool while the store is unreachable; should be 0.")
    spool = dashed_thresholds(spool, steps("green", (1, "orange")))
    reconnects = series("重连 Broker reconnects", InfluxQL(
        f'SELECT non_negative_difference(max("reconnects")) FROM "pipeline_health" WHERE $timeFilter AND '
        f'{collector} GROUP BY time($__interval), "collector" fill(none)', alias="$tag_collector"),
        description="Reconnects to the broker per interval; a steady trickle points at the network or the broker.")
    ratio = series("数据完整率 Completeness by domain", InfluxQL(
        'SELECT sum("stored") / sum("expected") FROM "completeness" WHERE $timeFilter AND "domain" =~ /^$domain$/ '
        'GROUP BY time(1h), "domain" fill(none)', alias="$tag_domain"), unit="percentunit",
        description="Stored over expected readings per hour (expected from each device's reporting interval).")
    ratio = dashed_thresholds(ratio, steps("red", (0.9, "orange"), (0.98, "green")))
    per_device = tabular("设备完整率 Completeness per device (worst first)", InfluxQL(
        'SELECT sum("stored") / sum("expected") AS "ratio", sum("expected") AS "expected", sum("received") AS '
        '"received", sum("stored") AS "stored", sum("rejected") AS "rejected" FROM "completeness" WHERE $timeFilter '
        'AND "domain" =~ /^$domain$/ GROUP BY "device", "domain", "street"', table=True),
        description="Devices that report less than expected: dead batteries, lost coverage, wrong clocks.").sort_by(
        [common_builders.TableSortByFieldState().display_name("ratio").desc(False)]).override_by_name("ratio", [
            model.DynamicConfigValue(id_val="unit", value="percentunit"),
            model.DynamicConfigValue(id_val="thresholds", value=steps("red", (0.9, "orange"), (0.98, "green")).build()),
            model.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"})])
    online = series("在线设备 Devices online by domain", InfluxQL(
        'SELECT sum("o") FROM (SELECT last("online") AS "o" FROM "device_status" WHERE $timeFilter '
        'GROUP BY time($__interval), "device", "domain") GROUP BY time($__interval), "domain" fill(none)',
        alias="$tag_domain"), description="Devices whose latest status in each interval is online.")
    layout = ((rate, grid(0, 0, 12, 8)), (flows, grid(12, 0, 12, 8)), (rejected, grid(0, 8, 12, 8)),
              (spool, grid(12, 8, 12, 8)), (reconnects, grid(0, 16, 12, 8)), (ratio, grid(12, 16, 12, 8)),
              (per_device, grid(0, 24, 16, 10)), (online, grid(16, 24, 8, 10)))
    for panel, pos in layout:
        board = board.with_panel(cast(dash.Panel, panel.grid_pos(pos)))
    return board
