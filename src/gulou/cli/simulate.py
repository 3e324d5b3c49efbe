"""``gulou simulate``: publish realistic telemetry for every registry device."""

from __future__ import annotations

import click


@click.command()
def simulate() -> None:
    """Publish simulated telemetry and status for every registry device."""
    raise click.ClickException("the simulator is not built yet")
