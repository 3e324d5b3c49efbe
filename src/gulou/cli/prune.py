"""``gulou prune``: delete dead letters and accounting beyond their retention (GULOU_LIMITS__*)."""

from __future__ import annotations

from pathlib import Path

import click

from gulou.app.prune import run_prune
from gulou.cli.common import echo_json, json_option, load_settings, store_option


@click.command("prune")
@store_option
@click.option("--deadletter-days", type=click.FloatRange(min=0), default=None,
              help="Keep dead letters this many days (env GULOU_LIMITS__DEADLETTER_RETENTION_DAYS; default 30).")
@click.option("--max-deadletters", type=click.IntRange(min=0), default=None,
              help="Keep at most this many, the newest (env GULOU_LIMITS__DEADLETTER_MAX_ROWS; default 1,000,000).")
@click.option("--counts-days", type=click.FloatRange(min=0), default=None,
              help="Keep accounting this many days (env GULOU_LIMITS__COUNTS_RETENTION_DAYS; default 400).")
@click.option("--vacuum", is_flag=True, help="Then give the freed space back to the file system (slow).")
@json_option
def prune(store: Path | None, deadletter_days: float | None, max_deadletters: int | None,
          counts_days: float | None, vacuum: bool, as_json: bool) -> None:
    """Delete old dead letters and accounting; the collector does this every hour by itself."""
    settings = load_settings(store=store)
    given = {"deadletter_retention_days": deadletter_days, "deadletter_max_rows": max_deadletters,
             "counts_retention_days": counts_days}
    limits = settings.limits.model_copy(update={k: v for k, v in given.items() if v is not None})
    try:
        deleted = run_prune(settings.model_copy(update={"limits": limits}), vacuum=vacuum)
    except FileNotFoundError as exc:
        raise click.ClickException(f"{exc}: nothing to prune (give --store or GULOU_STORE)") from None
    if as_json:
        echo_json(deleted)
    else:
        click.echo(f"deleted {deleted['deadletters']} dead letters and {deleted['counts']} accounting rows")
