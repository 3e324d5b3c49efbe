"""The alert workflow on the alerts dashboard: a table from the workflow database (PostgreSQL datasource)."""

from __future__ import annotations

from typing import Any, Self

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import table
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard as model

from gulou.dashboards.common import value_mappings
from gulou.workflow.grafana import ALERTS_SQL

# Provisioned in grafana/provisioning/datasources/gulou.yaml under this UID (the workflow tables in PostgreSQL).
WORKFLOW_DATASOURCE_UID = "gulou-workflow"
WORKFLOW_DATASOURCE_TYPE = "grafana-postgresql-datasource"
API_URL_VARIABLE = "api_url"
STATUS_COLOURS = {"new": ("new 新", "red"), "escalated": ("escalated 已升级", "dark-red"),
                  "acknowledged": ("acknowledged 已确认", "orange"), "assigned": ("assigned 已派", "yellow"),
                  "closed": ("closed 已销号", "green")}


def workflow_ref() -> model.DataSourceRef:
    """Reference to the workflow database's datasource."""
    return model.DataSourceRef(type_val=WORKFLOW_DATASOURCE_TYPE, uid=WORKFLOW_DATASOURCE_UID)


class SqlQuery(cogvariants.Dataquery):
    """A raw SQL target of Grafana's PostgreSQL datasource."""

    def __init__(self, ref_id: str = "A", raw_sql: str = "", fmt: str = "table") -> None:
        self.ref_id, self.raw_sql, self.fmt = ref_id, raw_sql, fmt

    def to_json(self) -> dict[str, object]:
        """Grafana's JSON for the target."""
        return {"refId": self.ref_id, "datasource": workflow_ref(), "rawSql": self.raw_sql, "format": self.fmt,
                "rawQuery": True, "editorMode": "code"}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        """Parse Grafana's JSON for the target."""
        return cls(ref_id=data.get("refId", "A"), raw_sql=data.get("rawSql", ""), fmt=data.get("format", "table"))


cogruntime.Runtime().register_dataquery_variant(
    cogruntime.DataqueryConfig(identifier=WORKFLOW_DATASOURCE_TYPE, from_json_hook=SqlQuery.from_json))


class SQL(cogbuilder.Builder[SqlQuery]):
    """Builder for a raw SQL target."""

    def __init__(self, sql: str, ref_id: str = "A") -> None:
        self._internal = SqlQuery(ref_id=ref_id, raw_sql=sql)

    def build(self) -> SqlQuery:
        """The target."""
        return self._internal


def api_url_variable() -> dash.TextBoxVariable:
    """Where the alert API is reached from the browser (``GULOU_API__PUBLIC_URL``), for the row links."""
    return dash.TextBoxVariable(API_URL_VARIABLE).label("告警接口 Alert API").default_value("http://127.0.0.1:8088")


def workflow_table() -> table.Panel:
    """Open and recent alerts with who acknowledged, who has them, escalation and work order; rows link to the API."""
    link = f"${{{API_URL_VARIABLE}}}/alerts/${{__data.fields[\"#\"]}}"
    return (
        table.Panel().title("处置状态 Alert handling").datasource(workflow_ref())
        .description("The workflow's alerts: open ones whatever their age and every alert seen in the time range, "
                     "worst first. Click the number for the alert's history in the API, the work order for the "
                     "same page's work-order section.")
        .with_target(SQL(ALERTS_SQL))
        .override_by_name("#", [model.DynamicConfigValue(id_val="links", value=[
            {"title": "告警详情 Alert and history", "url": link, "targetBlank": True}])])
        .override_by_name("work_order_id", [model.DynamicConfigValue(id_val="links", value=[
            {"title": "工单 Work order", "url": link, "targetBlank": True}])])
        .override_by_name("status", [
            model.DynamicConfigValue(id_val="mappings", value=value_mappings(STATUS_COLOURS)),
            model.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"})])
    )
