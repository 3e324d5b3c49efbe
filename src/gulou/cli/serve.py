"""``gulou serve``: the alert workflow's HTTP API."""

from __future__ import annotations

from pathlib import Path

import click

from gulou.cli.common import load_settings, setup_logging, store_option


@click.command("serve")
@click.option("--listen", default=None, metavar="HOST:PORT",
              help="Where to listen (env GULOU_API__LISTEN; default 127.0.0.1:8088).")
@store_option
def serve(listen: str | None, store: Path | None) -> None:
    """Serve the alert API: list, acknowledge, assign, close, silence; work-order callbacks (OpenAPI at /docs)."""
    from gulou.api.auth import TokenFileError
    from gulou.api.server import ServeError
    from gulou.app.serve import run_api

    settings = load_settings(store=store)
    setup_logging(settings.log_level)
    try:
        run_api(settings, listen or settings.api.listen)
    except (ServeError, TokenFileError) as exc:
        raise click.ClickException(str(exc)) from None
