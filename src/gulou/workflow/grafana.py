"""The SQL the Grafana alerts dashboard runs against the workflow tables (PostgreSQL datasource)."""

from __future__ import annotations

import re
from datetime import datetime

# Open alerts whatever their age, plus everything seen in the dashboard's time range; worst first.
# Grafana expands $__timeFilter(column) to the range of the dashboard.
ALERTS_SQL = """\
SELECT a.id AS "#", a.first_seen AS "time", a.severity, a.condition, a.status, a.rule_id, a.street,
       a.site_name, a.device_id, a.value, a."limit", a.acked_by, a.acked_at, a.assignee, a.escalation_level,
       a.closed_by, a.work_order_id, a.work_order_status, a.message
FROM workflow_alerts a
WHERE a.status <> 'closed' OR $__timeFilter(a.last_seen)
ORDER BY a.status = 'closed',
         CASE a.severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 WHEN 'low' THEN 3
                         ELSE 4 END,
         a.first_seen DESC
LIMIT 500"""

# Counts per status and severity for the stat panels.
STATUS_SQL = """\
SELECT a.status, a.severity, count(*) AS alerts
FROM workflow_alerts a
WHERE a.status <> 'closed' OR $__timeFilter(a.last_seen)
GROUP BY a.status, a.severity
ORDER BY a.status, a.severity"""

_TIME_FILTER = re.compile(r"\$__timeFilter\(([^)]+)\)")


def expand_time_filter(sql: str, start: datetime, end: datetime) -> str:
    """Expand ``$__timeFilter(col)`` as Grafana's PostgreSQL datasource does (for running the query elsewhere)."""
    return _TIME_FILTER.sub(
        lambda m: f"{m.group(1)} BETWEEN '{start.isoformat()}' AND '{end.isoformat()}'", sql)
