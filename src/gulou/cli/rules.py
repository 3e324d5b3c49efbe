"""``gulou rules`` and ``gulou alerts``: the rules engine and its alerts."""

from __future__ import annotations

import click


@click.group()
def rules() -> None:
    """Check and run the rules engine."""
