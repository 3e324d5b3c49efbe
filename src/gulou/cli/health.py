"""``gulou health``: a service's state as an exit code (0 ok, 1 degraded, 2 down), for health checks."""

from __future__ import annotations

from pathlib import Path

import click

from gulou.cli.common import echo_json, json_option, load_settings, store_option
from gulou.ops.check import check_collectors, check_url, healthz_url
from gulou.ops.health import STALE_AFTER_S, worst


@click.command("health")
@click.argument("service", type=click.Choice(["ingest", "rules"]))
@store_option
@click.option("--client-id", default=None,
              help="ingest: only this collector and its workers (<id>-0, <id>-1, ...).")
@click.option("--url", default=None, metavar="URL",
              help="Ask this /healthz instead (default for rules: the address in GULOU_OPS__LISTEN).")
@click.option("--max-age", type=click.FloatRange(min=1), default=STALE_AFTER_S, show_default=True,
              help="ingest: a collector whose last report is older is down.")
@json_option
def health(service: str, store: Path | None, client_id: str | None, url: str | None, max_age: float,
           as_json: bool) -> None:
    """Exit 0 when ok, 1 when degraded, 2 when down, saying why.

    ingest reads the health each collector writes into the store every 5 s (connected, stalled, spool);
    rules asks the rules service's /healthz.
    """
    settings = load_settings(store=store)
    if url is None and service == "ingest":
        verdicts = check_collectors(Path(settings.store), client_id, max_age)
    else:
        target = url or healthz_url(settings.ops.listen)
        if target is None:
            raise click.UsageError(f"{service}: give --url or set GULOU_OPS__LISTEN to where the service listens")
        verdicts = check_url(target)
    state = worst(verdicts)
    if as_json:
        echo_json({"state": state.label, "components": [v.to_json() for v in verdicts]})
    else:
        for v in verdicts:
            click.echo(f"{v.component}: {v.state.label}" + (f" ({'; '.join(v.reasons)})" if v.reasons else ""))
    raise SystemExit(int(state))
