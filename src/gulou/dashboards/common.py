"""Building blocks every dashboard shares: the datasource, raw InfluxQL targets, variables, thresholds."""

from __future__ import annotations

from typing import Any, Self

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import stat, table, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from gulou.timeutil import CHINA_TZ_NAME

# Every panel, variable and annotation points at this one datasource; provisioning and push create it
# under the same UID, so dashboards work unchanged whichever way Grafana was set up.
DATASOURCE_UID = "gulou-influxdb"
DATASOURCE_TYPE = "influxdb"
DATASOURCE_NAME = "鼓楼智脑 InfluxDB"
FOLDER_TITLE = "鼓楼智脑"
FOLDER_UID = "gulou"
TAG = "gulou"
# Grafana serves files under public/ to the browser; the compose stack mounts the generated device
# gazetteer there (see docs/dashboards.md, "Device coordinates").
GAZETTEER_PATH = "public/gazetteer/gulou-devices.json"

ALERT_ANNOTATION_QUERY = "SELECT message FROM alerts WHERE $timeFilter"
# InfluxQL's clause that makes GROUP BY time(1d) cut days at Beijing midnight.
TZ_CLAUSE = f"tz('{CHINA_TZ_NAME}')"

def datasource_ref() -> model.DataSourceRef:
    """Reference to the project's InfluxDB datasource."""
    return model.DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)


class InfluxQLQuery(cogvariants.Dataquery):
    """A raw InfluxQL target of Grafana's InfluxDB datasource (the SDK ships no InfluxDB query type)."""

    def __init__(self, ref_id: str = "A", query: str = "", result_format: str = "time_series",
                 alias: str | None = None, hide: bool = False) -> None:
        self.ref_id = ref_id
        self.query = query
        self.result_format = result_format
        self.alias = alias
        self.hide = hide

    def to_json(self) -> dict[str, object]:
        """Grafana's JSON for the target."""
        payload: dict[str, object] = {
            "refId": self.ref_id,
            "datasource": datasource_ref(),
            "query": self.query,
            "rawQuery": True,
            "resultFormat": self.result_format,
        }
        if self.alias:
            payload["alias"] = self.alias
        if self.hide:
            payload["hide"] = True
        return payload

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        """Parse Grafana's JSON for the target."""
        return cls(ref_id=data.get("refId", "A"), query=data.get("query", ""),
                   result_format=data.get("resultFormat", "time_series"), alias=data.get("alias"),
                   hide=bool(data.get("hide", False)))


# Lets Dashboard.from_json turn our targets back into InfluxQLQuery objects (used by the round-trip check).
cogruntime.Runtime().register_dataquery_variant(
    cogruntime.DataqueryConfig(identifier=DATASOURCE_TYPE, from_json_hook=InfluxQLQuery.from_json)
)


class InfluxQL(cogbuilder.Builder[InfluxQLQuery]):
    """Builder for a raw InfluxQL target."""

    def __init__(self, query: str, ref_id: str = "A", *, table: bool = False, alias: str | None = None) -> None:
        self._internal = InfluxQLQuery(ref_id=ref_id, query=query,
                                       result_format="table" if table else "time_series", alias=alias)

    def build(self) -> InfluxQLQuery:
        """The target."""
        return self._internal


class InfluxAnnotationTarget(model.AnnotationTarget):
    """Annotation target carrying an InfluxQL query (the SDK's type only knows Grafana's own store)."""

    def __init__(self, query: str, text_column: str = "message") -> None:
        super().__init__(limit=100, match_any=False, tags=[], type_val="dashboard")
        self.query = query
        self.text_column = text_column

    def to_json(self) -> dict[str, object]:
        """Grafana's JSON for the annotation target."""
        return {**super().to_json(), "refId": "Anno", "query": self.query, "rawQuery": True,
                "fromAnnotations": True, "textColumn": self.text_column}


class _AnnotationTargetBuilder(cogbuilder.Builder[model.AnnotationTarget]):
    def __init__(self, target: InfluxAnnotationTarget) -> None:
        self._target = target

    def build(self) -> model.AnnotationTarget:
        return self._target


def alert_annotation() -> dash.AnnotationQuery:
    """Alert events from the rules engine drawn on every time-series panel."""
    return (
        dash.AnnotationQuery()
        .name("告警 Alerts")
        .datasource(datasource_ref())
        .enable(True)
        .icon_color("red")
        .target(_AnnotationTargetBuilder(InfluxAnnotationTarget(ALERT_ANNOTATION_QUERY)))
    )


def tag_variable(name: str, label: str, measurement: str, key: str, where: str = "") -> dash.QueryVariable:
    """A multi-value variable listing one tag's values (``SHOW TAG VALUES``)."""
    query = f'SHOW TAG VALUES FROM "{measurement}" WITH KEY = "{key}"'
    if where:
        query += f" WHERE {where}"
    return (
        dash.QueryVariable(name)
        .label(label)
        .datasource(datasource_ref())
        .query(query)
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .current(model.VariableOption(selected=True, text="All", value="$__all"))
    )


def base_dashboard(uid: str, title: str, description: str, *, time_from: str = "now-24h") -> dash.Dashboard:
    """A dashboard with the shared tags, refresh, time range, timezone and alert annotations."""
    return (
        dash.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG])
        .editable()
        .timezone(CHINA_TZ_NAME)
        .time(time_from, "now")
        .refresh("1m")
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .annotation(alert_annotation())
    )


def steps(base: str, *levels: tuple[float, str]) -> dash.ThresholdsConfig:
    """Absolute thresholds: ``base`` colour below the first level, then each (value, colour)."""
    items = [model.Threshold(value=None, color=base)] + [model.Threshold(value=v, color=c) for v, c in levels]
    return dash.ThresholdsConfig().mode(model.ThresholdsMode.ABSOLUTE).steps(items)


def range_mappings(bands: list[tuple[float | None, float | None, str, str]]) -> list[model.ValueMapping]:
    """Value mappings from numeric ranges to a label and colour: (from, to, text, colour)."""
    result: list[model.ValueMapping] = []
    for index, (low, high, text, colour) in enumerate(bands):
        options = model.DashboardRangeMapOptions(
            from_val=low, to=high, result=model.ValueMappingResult(text=text, color=colour, index=index))
        result.append(model.RangeMap(options=options))
    return result


def value_mappings(values: dict[str, tuple[str, str]]) -> list[model.ValueMapping]:
    """Value mappings from exact values to a label and colour."""
    options = {k: model.ValueMappingResult(text=t, color=c, index=i) for i, (k, (t, c)) in enumerate(values.items())}
    return [model.ValueMap(options=options)]


def grid(x: int, y: int, w: int, h: int) -> model.GridPos:
    """Explicit panel position, so the layout never depends on insertion order."""
    return model.GridPos(x=x, y=y, w=w, h=h)


def series(title: str, *targets: InfluxQL, unit: str = "short", description: str = "") -> timeseries.Panel:
    """A time-series panel on the shared datasource with a table legend."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(datasource_ref())
        .unit(unit)
        .line_width(1)
        .fill_opacity(8)
        .show_points(common.VisibilityMode.NEVER)
        .span_nulls(True)
        .legend(_legend())
    )
    for target in targets:
        panel = panel.with_target(target)
    return panel


def _legend() -> cogbuilder.Builder[common.VizLegendOptions]:
    from grafana_foundation_sdk.builders import common as common_builders

    return (common_builders.VizLegendOptions().display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM).show_legend(True).calcs(["lastNotNull", "max"]))


def dashed_thresholds(panel: timeseries.Panel, thresholds: dash.ThresholdsConfig) -> timeseries.Panel:
    """Draw the thresholds as dashed lines on a time-series panel."""
    from grafana_foundation_sdk.builders import common as common_builders

    return panel.thresholds(thresholds).thresholds_style(
        common_builders.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.DASHED))


def single(title: str, *targets: InfluxQL, unit: str = "short", description: str = "") -> stat.Panel:
    """A stat panel on the shared datasource showing the last value per series."""
    from grafana_foundation_sdk.builders import common as common_builders

    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(datasource_ref())
        .unit(unit)
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.NONE)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    for target in targets:
        panel = panel.with_target(target)
    return panel


def tabular(title: str, *targets: InfluxQL, description: str = "") -> table.Panel:
    """A table panel on the shared datasource."""
    panel = table.Panel().title(title).description(description).datasource(datasource_ref())
    for target in targets:
        panel = panel.with_target(target)
    return panel


def transformation(kind: str, **options: Any) -> model.DataTransformerConfig:
    """One Grafana transformation step."""
    return model.DataTransformerConfig(id_val=kind, options=options)


def limit_series(metric: str, measurement: str, limit: float, label: str, where: str = "") -> str:
    """InfluxQL for a labelled constant line at ``limit`` (so the limit shows in the legend with its source)."""
    extra = f" AND {where}" if where else ""
    return (f'SELECT mean("{metric}") * 0 + {limit:g} AS "{label}" FROM "{measurement}" '
            f"WHERE $timeFilter{extra} GROUP BY time($__interval) fill(previous)")
