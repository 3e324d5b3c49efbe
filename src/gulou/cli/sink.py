"""``gulou sink``: storage writers on the bus (several processes share the work)."""

from __future__ import annotations

from pathlib import Path

import click

from gulou.app.bus import run_sink
from gulou.app.ingest import IngestError, IngestUsageError
from gulou.cli.common import bus_option, load_settings, setup_logging, store_option


@click.command()
@bus_option
@store_option
@click.option("--batch-size", type=click.IntRange(1, 20000), default=1000, show_default=True)
@click.option("--log-level", default=None, help="DEBUG, INFO, WARNING (env GULOU_LOG_LEVEL).")
def sink(bus: str | None, store: Path | None, batch_size: int, log_level: str | None) -> None:
    """Write the bus to the store (InfluxDB when GULOU_INFLUX__URL is set), acknowledging after each commit."""
    settings = load_settings(bus_url=bus, store=store, log_level=log_level)
    setup_logging(settings.log_level)
    try:
        run_sink(settings, batch_size)
    except IngestUsageError as exc:
        raise click.UsageError(str(exc)) from None
    except IngestError as exc:
        raise click.ClickException(str(exc)) from None
