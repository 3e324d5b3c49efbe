"""``gulou dashboards``: generate and push the operators' Grafana dashboards."""

from __future__ import annotations

import click


@click.group()
def dashboards() -> None:
    """Generate and push Grafana dashboards."""
