"""``gulou standards``: AQI, water class and black-odour level computed from the national standards."""

from __future__ import annotations

import click


@click.group()
def standards() -> None:
    """Compute AQI (HJ 633), GB 3838 water class and black-odour level from values."""
