"""``gulou run`` (the pipeline as a service) and ``gulou demo`` (the pipeline plus simulated incidents)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from gulou.app.demo import run_demo
from gulou.app.hj212 import Hj212Error
from gulou.app.pipeline import Pipeline, run_pipeline
from gulou.cli.common import (
    broker_option,
    echo_json,
    json_option,
    load_settings,
    open_registry,
    registry_option,
    setup_logging,
    store_option,
)
from gulou.settings import Settings
from gulou.simulators.publisher import SimulationError
from gulou.simulators.scenario import ScenarioError, load_scenario


def _install_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


@click.command()
@broker_option
@store_option
@registry_option
@click.option("--no-rules", is_flag=True, help="Collect only; do not run the rules engine.")
@click.option("--listen", default=None, metavar="HOST:PORT",
              help="Where the embedded broker listens, e.g. 0.0.0.0:1883 for devices on the network "
                   "(env GULOU_MQTT__LISTEN; default: a free loopback port).")
@click.option("--log-level", default=None, help="DEBUG, INFO, WARNING (env GULOU_LOG_LEVEL).")
def run(broker: str | None, store: Path | None, registry: Path | None, no_rules: bool, listen: str | None,
        log_level: str | None) -> None:
    """Run the pipeline: collector and rules engine (embedded broker and store unless configured)."""
    if listen is not None and broker is not None:
        raise click.UsageError("--listen is for the embedded broker; with --broker the devices use that broker")
    settings = load_settings(broker=broker, store=store, registry=registry, log_level=log_level,
                             broker_listen=listen)
    setup_logging(settings.log_level)
    reg = open_registry(settings)

    async def main() -> None:
        stop = asyncio.Event()
        _install_signals(stop)

        async def announce(p: Pipeline) -> None:
            where = f"mqtt://{p.broker.host}:{p.broker.port}" + (" (embedded)" if p.embedded else "")
            click.echo(f"gulou run: collecting from {where} into {settings.influx.url or settings.store}; "
                       f"rules {'on' if p.rules else 'off'}. Ctrl-C stops.", err=True)
            await stop.wait()

        await run_pipeline(settings, reg, stop, with_rules=not no_rules, on_ready=announce)

    _run_or_explain(main)


DEMO_STORE = Path("gulou-data/demo.db")


@click.command()
@click.option("--store", type=click.Path(path_type=Path, dir_okay=False), default=DEMO_STORE, show_default=True,
              help="Store for the demo; it is emptied at the start of every run.")
@registry_option
@click.option("--scenario", default="incidents", show_default=True, help="Shipped scenario name or a YAML file.")
@click.option("--speed", type=click.FloatRange(min=1), default=600, show_default=True,
              help="Simulated seconds per real second.")
@click.option("--sim-hours", type=click.FloatRange(min=0.1, max=72), default=8, show_default=True,
              help="Simulated hours to play; the simulation ends at the current time.")
@click.option("--seed", type=int, default=1, show_default=True)
@json_option
@click.option("--log-level", default="ERROR", show_default=True,
              help="Alerts show in the live table; WARNING also logs each alert delivery.")
def demo(store: Path, registry: Path | None, scenario: str, speed: float, sim_hours: float, seed: int,
         as_json: bool, log_level: str) -> None:
    """Run the pipeline on an embedded broker with simulated devices and incidents, showing it live."""
    # The demo always brings its own embedded broker and store, whatever GULOU_BROKER/GULOU_STORE say, and
    # starts empty: it replays the hours up to now, which a previous run's saved rule state would call late.
    settings = Settings.model_validate({**load_settings(registry=registry, log_level=log_level).model_dump(),
                                        "broker": None, "influx_url": None, "store": store})
    for leftover in (store, store.with_name(store.name + "-wal"), store.with_name(store.name + "-shm")):
        leftover.unlink(missing_ok=True)
    setup_logging(settings.log_level)
    reg = open_registry(settings)
    try:
        chosen = load_scenario(scenario)
    except ScenarioError as exc:
        raise click.ClickException(str(exc)) from None
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    # Simulated time ends now, so readings are never "in the future" for the collector.
    start = now - timedelta(hours=sim_hours)
    console = Console(stderr=True)
    result: dict[str, Any] = {}

    async def main() -> None:
        stop = asyncio.Event()
        _install_signals(stop)
        result.update(await run_demo(settings, reg, chosen, start, sim_hours, speed, seed, console, stop))

    _run_or_explain(main)
    if not result:
        return
    if as_json:
        echo_json(result)
        return
    click.echo(f"published {result['published']}, stored {result['stored']}, rejected {result['rejected']}, "
               f"unaccounted {result['unaccounted']}; alerts fired {len(result['alerts'])}, "
               f"still active {sum(a['state'] == 'firing' for a in result['alerts'])}")
    counts = result.get("alerts_by_severity") or {}
    click.echo("alerts by severity: " + ", ".join(f"{s} {n}" for s, n in counts.items() if n))
    # Most severe first (the list comes sorted): the incidents that need someone now lead.
    for a in result["alerts"][:10]:
        click.echo(f"  {a['severity']:<13} {a['state']:<8} {a['rule_id']:<32} {a['device_id']:<16} "
                   f"{a.get('site_name') or ''}")
    where = f"--store {settings.store}"
    click.echo(f"look closer: gulou stats {where}; gulou alerts {where}; gulou query --domain air {where}")


def _run_or_explain(main: Any) -> None:
    try:
        asyncio.run(main())
    except* (SimulationError, ConnectionError, Hj212Error) as errors:
        raise click.ClickException(str(errors.exceptions[0])) from None
    except* KeyboardInterrupt:
        with contextlib.suppress(Exception):
            click.echo("interrupted", err=True)
