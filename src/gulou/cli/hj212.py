"""``gulou hj212``: the HJ 212 station gateway as a service (flags only; the runner is gulou.app.hj212)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import click

from gulou.app.hj212 import Hj212Error, run_gateway
from gulou.cli.common import (
    echo_json,
    json_option,
    load_settings,
    open_registry,
    registry_option,
    setup_logging,
)
from gulou.hj212.server import Hj212Server
from gulou.settings import Settings


def with_gateway_flags(settings: Settings, listen: str | None, secrets_file: Path | None) -> Settings:
    """``settings`` with the gateway flags given on top of its ``hj212`` section."""
    given = {k: v for k, v in (("listen", listen), ("secrets_file", secrets_file)) if v is not None}
    if not given:
        return settings
    try:
        return Settings.model_validate({**settings.model_dump(), "hj212": {**settings.hj212.model_dump(), **given}})
    except ValueError as exc:
        raise click.UsageError(f"configuration: {exc}") from None


@click.command("hj212")
@click.option("--listen", default=None, metavar="HOST:PORT",
              help="Address the stations' data loggers connect to (env GULOU_HJ212__LISTEN), e.g. 0.0.0.0:2756.")
@click.option("--broker", default=None, metavar="URL",
              help="mqtt://HOST:PORT or mqtts://HOST:PORT the readings go to (env GULOU_BROKER; required).")
@registry_option
@click.option("--secrets-file", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None,
              help="YAML MN → password (or {password, sm4_key}), kept outside the repository "
                   "(env GULOU_HJ212__SECRETS_FILE).")
@click.option("--log-level", default=None, help="DEBUG, INFO, WARNING (env GULOU_LOG_LEVEL).")
@json_option
def hj212(listen: str | None, broker: str | None, registry: Path | None, secrets_file: Path | None,
          log_level: str | None, as_json: bool) -> None:
    """Serve HJ 212 stations: packets → readings on the broker, 9014 once the broker has them."""
    settings = with_gateway_flags(load_settings(broker=broker, registry=registry, log_level=log_level), listen,
                                  secrets_file)
    setup_logging(settings.log_level)
    address = settings.broker_address()
    if address is None:
        raise click.UsageError("no broker: give --broker mqtt://HOST:PORT (or GULOU_BROKER); `gulou run` with "
                               "GULOU_HJ212__LISTEN runs the gateway beside an embedded broker instead")
    reg = open_registry(settings)
    figures: dict[str, Any] = {}

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)

        async def ready(server: Hj212Server) -> None:
            host, port = server.address
            click.echo(f"gulou hj212: listening on {host}:{port} for {len(server.gateway.book)} stations, "
                       f"publishing to mqtt://{address.host}:{address.port}. Ctrl-C stops.", err=True)

        figures.update(await run_gateway(settings, reg, address, stop, ready))

    try:
        asyncio.run(main())
    except Hj212Error as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        echo_json(figures)
        return
    packets = figures.get("packets", {})
    click.echo("stopped: " + ", ".join(f"{k} {v}" for k, v in packets.items()), err=True)
