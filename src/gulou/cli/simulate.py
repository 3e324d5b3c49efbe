"""``gulou simulate``: publish realistic telemetry for every registry device."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gulou.app.simulate import simulate as simulate_devices
from gulou.cli.common import (
    broker_option,
    echo_json,
    json_option,
    load_settings,
    open_registry,
    registry_option,
    setup_logging,
)
from gulou.cli.hj212 import simulate_stations_command, station_faults
from gulou.devices.registry import Registry
from gulou.settings import Settings
from gulou.simulators.faults import check_rates
from gulou.simulators.model import FAULT_KINDS, parse_duration, rfc3339
from gulou.simulators.publisher import SimConfig, SimProgress, SimSummary, SimulationError
from gulou.simulators.scenario import ScenarioError, load_scenario, schedule
from gulou.timeutil import CHINA_TZ


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _start(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not RFC 3339 (e.g. 2026-11-26T08:00:00+08:00)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=CHINA_TZ)


def _fault_rates(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, float]:
    rates: dict[str, float] = {}
    for item in values:
        kind, sep, rate = item.partition("=")
        try:
            if not sep:
                raise ValueError(f"{item!r}: expected KIND=RATE, e.g. malformed=0.01")
            rates[kind.strip()] = float(rate)
            check_rates(rates)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    return rates


@click.command()
@broker_option
@registry_option
@click.option("--speed", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Simulated seconds per real second (60 = one simulated hour per minute; 0 = flat out).")
@click.option("--duration", callback=_duration, metavar="SECONDS", help="Stop after this much real time.")
@click.option("--sim-duration", callback=_duration, metavar="SIM_SECONDS",
              help="Stop after this much simulated time (seconds, or 30m, 2h, 1d).")
@click.option("--start", callback=_start, metavar="RFC3339",
              help="Simulated start time (default: now, rounded down to the minute).")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed and start → identical stream.")
@click.option("--scenario", default="quiet", show_default=True, metavar="NAME|FILE",
              help="Shipped scenario (incidents, quiet) or a scenario YAML file.")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), default=None, metavar="MSGS_PER_S",
              help="Cap on published messages per second.")
@click.option("--fault-rate", "fault_rates", multiple=True, callback=_fault_rates, metavar="KIND=RATE",
              help=f"Fraction of telemetry messages with a fault ({', '.join(FAULT_KINDS)}); repeatable.")
@click.option("--qos", type=click.IntRange(0, 2), default=1, show_default=True, help="MQTT QoS of every message.")
@click.option("--connections", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Size of the MQTT connection pool shared by all simulated devices.")
@click.option("--no-offline-at-end", "no_offline_at_end", is_flag=True,
              help="Leave every device online at the end instead of publishing a retained offline for each.")
@click.option("--hj212", "hj212_target", default=None, metavar="HOST:PORT",
              help="Instead: the registry's HJ 212 stations speak to the gateway at HOST:PORT (passwords from "
                   "GULOU_HJ212__SECRETS_FILE).")
@click.option("--station-fault", "station_faults", multiple=True, callback=station_faults, metavar="KIND=RATE",
              help="With --hj212: fraction of packets with a field fault (swapped_crc, modbus_crc, plus6, "
                   "lower_crc, no_crlf, tcp_split, pnum_split, oversized, lost_ack; default 0.02 each).")
@json_option
def simulate(broker: str | None, registry: Path | None, speed: float, duration: float | None,
             sim_duration: float | None, start: datetime | None, seed: int, scenario: str, rate: float | None,
             fault_rates: dict[str, float], qos: int, connections: int, no_offline_at_end: bool,
             hj212_target: str | None, station_faults: dict[str, float], as_json: bool) -> None:
    """Publish simulated telemetry and status for every registry device (or HJ 212 stations with --hj212)."""
    settings = load_settings(broker=broker, registry=registry)
    setup_logging(settings.log_level)
    for noisy in ("amqtt", "transitions"):  # the embedded broker narrates every state change at INFO
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    devices = open_registry(settings)
    try:
        chosen = load_scenario(scenario)
        schedule(chosen, devices)
        if hj212_target is not None:
            simulate_stations_command(settings, hj212_target, scenario=chosen, seed=seed, start=start,
                                      sim_duration=sim_duration, speed=speed, fault_rates=station_faults,
                                      as_json=as_json)
            return
        config = SimConfig(
            registry=devices, scenario=chosen, seed=seed, start=start, sim_duration=sim_duration,
            duration=duration, speed=speed, rate=rate, qos=qos, connections=connections,
            fault_rates={**chosen.faults, **fault_rates}, username=settings.mqtt.username,
            password=settings.mqtt.secret(), ca_file=settings.mqtt.ca_file,
            offline_at_end=not no_offline_at_end,
        )
    except ScenarioError as exc:
        raise click.ClickException(str(exc)) from None
    except (ValidationError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    err = Console(stderr=True)
    if start is None and speed != 1:
        err.print("[yellow]note:[/] simulated time runs ahead of the wall clock at this speed; a collector "
                  "rejects timestamps beyond its allowed clock skew — give --start in the past to avoid that")
    try:
        summary = asyncio.run(_run(config, settings, devices, err, sim_duration))
    except SimulationError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        echo_json(summary.model_dump())
    else:
        _print_summary(summary)


async def _run(config: SimConfig, settings: Settings, devices: Registry, err: Console,
               sim_duration: float | None) -> SimSummary:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    columns: list[Any] = [TextColumn("[bold]simulating[/] {task.fields[devices]} devices"), BarColumn(),
                          TextColumn("{task.fields[published]} published · {task.fields[rate]} msg/s · "
                                     "sim {task.fields[sim]}"), TimeElapsedColumn()]
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task("sim", total=sim_duration, devices=len(devices), published=0, rate="0", sim="-")
        first: list[datetime] = []

        def show(p: SimProgress) -> None:
            first[:1] = first[:1] or [p.sim_time]
            bar.update(task, completed=(p.sim_time - first[0]).total_seconds(), published=p.published,
                       rate=f"{p.msgs_per_s:,.0f}", sim=rfc3339(p.sim_time))

        return await simulate_devices(config, settings, show, stop, err.print)


def _print_summary(s: SimSummary) -> None:
    out = Console()
    out.print(f"published [bold]{s.published}[/] messages ({s.telemetry} telemetry, {s.status} status) to "
              f"{s.broker} in {s.real_seconds:.1f} s ({s.msgs_per_s:,.0f} msg/s); stopped: {s.stopped}")
    out.print(f"simulated {s.start} → {s.sim_time_reached} ({s.sim_seconds / 3600:.2f} h), scenario "
              f"{s.scenario}, seed {s.seed}, {s.devices} devices; unsent {s.unsent}")
    table = Table(title="by domain")
    table.add_column("domain")
    table.add_column("messages", justify="right")
    for domain, n in s.by_domain.items():
        table.add_row(domain, str(n))
    out.print(table)
    faults = Table(title="faults injected")
    faults.add_column("kind")
    faults.add_column("messages", justify="right")
    for kind, n in s.faults.items():
        faults.add_row(kind, str(n))
    out.print(faults)
    out.print(f"expected dead letters (malformed + out_of_range + unknown_device): {s.expected_rejections}")
    out.print(f"retained statuses: {s.retained['online']} online, {s.retained['offline']} offline")
