"""A plain dashboard for a domain without a hand-built one: every metric of its device types per device.

A new device type that brings a new domain shows up in Grafana without dashboard code; a hand-built
dashboard (one line in ``gulou.dashboards.generate.BUILDERS`` named ``<domain>.json``) replaces it.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash

from gulou.dashboards.common import InfluxQL, base_dashboard, grid, series, tag_variable
from gulou.dashboards.limits import GRAFANA_UNITS
from gulou.devices.base import Metric
from gulou.devices.catalog import CATALOG

STREET = "\"street\" =~ /^$street$/"
DEVICE = "\"device\" =~ /^$device$/"


def domain_metrics(domain: str) -> list[Metric]:
    """The metrics of the domain's types, each name once, in catalog order."""
    seen: dict[str, Metric] = {}
    for dtype in CATALOG.values():
        if dtype.domain == domain:
            for metric in dtype.metrics:
                seen.setdefault(metric.name, metric)
    return list(seen.values())


def build_domain(domain: str) -> dash.Dashboard:
    """Hourly means (last value for booleans) of every metric per device, with the catalog's units."""
    types = ", ".join(t.description for t in CATALOG.values() if t.domain == domain)
    board = base_dashboard(f"gulou-{domain}", f"鼓楼智脑 {domain}", f"Readings per device: {types}.")
    board = board.with_variable(tag_variable("street", "街道 Street", domain, "street"))
    board = board.with_variable(tag_variable("device", "设备 Device", domain, "device", STREET))
    for index, metric in enumerate(domain_metrics(domain)):
        select = f'last("{metric.name}")' if metric.kind == "bool" else f'mean("{metric.name}")'
        query = (f'SELECT {select} FROM "{domain}" WHERE $timeFilter AND {STREET} AND {DEVICE} '
                 'GROUP BY time($__interval), "device" fill(none)')
        panel = series(f"{metric.description} ({metric.name})", InfluxQL(query, alias="$tag_device"),
                       unit=GRAFANA_UNITS.get(metric.unit, "short"),
                       description=f"{metric.description} per device, in {metric.unit}.")
        board = board.with_panel(panel.grid_pos(grid((index % 2) * 12, (index // 2) * 8, 12, 8)))
    return board
