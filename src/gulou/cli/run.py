"""``gulou run`` (the pipeline as a service) and ``gulou demo`` (the pipeline plus simulated incidents)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

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
from gulou.ingest.store import EmbeddedStore
from gulou.pipeline import Pipeline, run_pipeline
from gulou.settings import Settings
from gulou.simulators.publisher import SimConfig, SimProgress, SimSummary, SimulationError, run_simulation
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
@click.option("--log-level", default=None, help="DEBUG, INFO, WARNING (env GULOU_LOG_LEVEL).")
def run(broker: str | None, store: Path | None, registry: Path | None, no_rules: bool, log_level: str | None) -> None:
    """Run the pipeline: collector and rules engine (embedded broker and store unless configured)."""
    settings = load_settings(broker=broker, store=store, registry=registry, log_level=log_level)
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

        async def play(p: Pipeline) -> None:
            # The pipeline outlives the simulation: the devices should not all announce they went away.
            config = SimConfig(registry=reg, scenario=chosen, seed=seed, start=start,
                               sim_duration=sim_hours * 3600, speed=speed, offline_at_end=False)
            latest: list[SimProgress] = []
            with Live(console=console, refresh_per_second=4, transient=False) as live:
                async def refresh() -> None:
                    while True:
                        live.update(_panel(p, settings, latest[-1] if latest else None))
                        await asyncio.sleep(0.25)

                ticker = asyncio.create_task(refresh(), name="demo-display")
                try:
                    summary = await run_simulation(config, p.broker, progress=latest.append, stop=stop)
                    await _settle(p, settings, summary)
                finally:
                    ticker.cancel()
                    live.update(_panel(p, settings, latest[-1] if latest else None))
            console.line()
            result.update(_final(p, settings, summary))

        await run_pipeline(settings, reg, stop, clock="event", on_ready=play)

    _run_or_explain(main)
    if not result:
        return
    if as_json:
        echo_json(result)
        return
    click.echo(f"published {result['published']}, stored {result['stored']}, rejected {result['rejected']}, "
               f"unaccounted {result['unaccounted']}; alerts fired {len(result['alerts'])}, "
               f"still active {sum(a['state'] == 'firing' for a in result['alerts'])}")
    where = f"--store {settings.store}"
    click.echo(f"look closer: gulou stats {where}; gulou alerts {where}; gulou query --domain air {where}")


async def _settle(p: Pipeline, settings: Settings, summary: SimSummary, timeout: float = 30) -> None:
    """Wait until the collector has accounted for everything published, and the rules engine caught up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        t = p.collector.totals
        if t.received >= summary.published:
            break
        await asyncio.sleep(0.2)
    if p.rules is not None:
        await p.rules.drain(timeout=10)


def _panel(p: Pipeline, settings: Settings, progress: SimProgress | None) -> Group:
    t = p.collector.totals
    head = Table.grid(padding=(0, 2))
    sim = progress.sim_time.astimezone().strftime("%m-%d %H:%M") if progress else "-"
    rate = f"{progress.msgs_per_s:,.0f}" if progress else "-"
    head.add_row("simulated time", sim, "published/s", rate, "stored", f"{t.stored:,}", "rejected",
                 f"{t.rejected:,}", "spooled", f"{t.spooled:,}")
    domains = Table(title="per domain (stored)", show_edge=False)
    for domain in sorted(t.by_domain):
        domains.add_column(domain, justify="right")
    domains.add_row(*(f"{t.by_domain[d]:,}" for d in sorted(t.by_domain)))
    alerts = Table(title="alerts", show_edge=False)
    for col in ("state", "severity", "rule", "device", "value", "limit"):
        alerts.add_column(col)
    if p.rules is not None and p.rules.store is not None:
        for a in p.rules.store.alerts(limit=8):
            colour = "red" if a["state"] == "firing" else "green"
            alerts.add_row(f"[{colour}]{a['state']}[/]", str(a["severity"]), str(a["rule_id"]),
                           str(a["device_id"]), _num(a.get("value")), _num(a.get("limit")))
    return Group(head, domains, alerts)


def _num(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, int | float) else "-"


def _final(p: Pipeline, settings: Settings, summary: SimSummary) -> dict[str, Any]:
    store = EmbeddedStore(Path(settings.store))
    try:
        stats = store.stats()
    finally:
        store.close()
    alerts = p.rules.store.alerts() if p.rules is not None and p.rules.store is not None else []
    accounted = stats["stored"] + stats["rejected"] + stats["spooled"]
    return {"published": summary.published, "stored": stats["stored"], "rejected": stats["rejected"],
            "spooled": stats["spooled"], "unaccounted": summary.published - accounted,
            "by_domain": stats["by_domain"], "by_reason": stats["by_reason"], "faults": summary.faults,
            "alerts": alerts, "scenario": summary.scenario, "sim_time_reached": summary.sim_time_reached}


def _run_or_explain(main: Any) -> None:
    try:
        asyncio.run(main())
    except* (SimulationError, ConnectionError) as errors:
        raise click.ClickException(str(errors.exceptions[0])) from None
    except* KeyboardInterrupt:
        with contextlib.suppress(Exception):
            click.echo("interrupted", err=True)
