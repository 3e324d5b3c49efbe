"""``gulou hj212``: the HJ 212 station gateway as a service (flags only; the runner is gulou.app.hj212)."""

from __future__ import annotations

import asyncio
import signal
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from gulou.app.hj212 import Hj212Error, run_gateway, simulate_stations
from gulou.cli.common import (
    echo_json,
    json_option,
    load_settings,
    open_registry,
    registry_option,
    setup_logging,
)
from gulou.hj212.server import Hj212Server
from gulou.settings import Settings, parse_listen
from gulou.simulators.scenario import Scenario


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


def station_faults(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, float]:
    """``KIND=RATE`` options of ``gulou simulate --hj212`` as a mapping."""
    rates: dict[str, float] = {}
    for item in values:
        kind, sep, rate = item.partition("=")
        try:
            value = float(rate) if sep else -1.0
        except ValueError:
            value = -1.0
        if not 0 <= value <= 1:
            raise click.BadParameter(f"{item!r}: expected KIND=RATE with a rate from 0 to 1, e.g. lost_ack=0.1")
        rates[kind.strip()] = value
    return rates


def simulate_stations_command(settings: Settings, target: str, *, scenario: Scenario, seed: int,
                              start: datetime | None, sim_duration: float | None, speed: float,
                              fault_rates: dict[str, float], as_json: bool) -> None:
    """``gulou simulate --hj212 HOST:PORT``: the registry's stations speaking HJ 212 to a gateway."""
    try:
        host, port = parse_listen(target)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--hj212") from None
    reg = open_registry(settings)

    async def main() -> dict[str, Any]:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        return await simulate_stations(settings, reg, host, port, scenario=scenario, seed=seed, start=start,
                                       sim_duration_s=sim_duration or 3600.0, speed=speed, fault_rates=fault_rates,
                                       stop=stop)

    try:
        summary = asyncio.run(main())
    except Hj212Error as exc:
        raise click.ClickException(str(exc)) from None
    except (ConnectionError, OSError) as exc:
        raise click.ClickException(f"gateway {host}:{port} not reachable: {exc}") from None
    if as_json:
        echo_json(summary)
        return
    for mn, figures in summary.items():
        faults = ", ".join(f"{k} {v}" for k, v in sorted(figures.pop("faults", {}).items())) or "none"
        device = figures.pop("device_id")
        counts = ", ".join(f"{k} {v}" for k, v in sorted(figures.items()))
        click.echo(f"{device} (MN {mn}): {counts}; faults: {faults}")
