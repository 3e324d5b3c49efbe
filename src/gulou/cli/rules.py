"""``gulou rules`` and ``gulou alerts``: the rules engine and its alerts."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import click

from gulou.app.ingest import IngestError, IngestUsageError
from gulou.cli.common import (
    broker_option,
    bus_option,
    echo_json,
    json_option,
    load_settings,
    open_registry,
    registry_option,
    setup_logging,
    store_option,
)
from gulou.rules.model import AnyRule, RuleError, load_rules, summarise

log = logging.getLogger(__name__)

rules_option = click.option(
    "--rules", "rule_files", multiple=True, type=click.Path(path_type=Path, dir_okay=False),
    help="Rule file(s) (repeatable; default: the shipped rule set).",
)


def _load(files: tuple[Path, ...]) -> list[AnyRule]:
    try:
        return load_rules(list(files) or None)
    except RuleError as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def rules() -> None:
    """Check, list, run and recompute the rules engine."""


@rules.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@registry_option
@json_option
def rules_check(files: tuple[Path, ...], registry: Path | None, as_json: bool) -> None:
    """Validate rule files; exit non-zero naming the file, rule id and field of the first problem.

    Also warns (without failing) about rules that match no device of the registry: a typo in a selector
    otherwise leaves a rule silently watching nothing.
    """
    problems: list[str] = []
    counts: dict[str, int] = {}
    for file in files:
        try:
            counts[str(file)] = len(load_rules([file]))
        except RuleError as exc:
            problems.append(str(exc))
    warnings: list[str] = []
    if not problems:
        try:
            loaded = load_rules(list(files))  # ids must also be unique across the files
        except RuleError as exc:
            problems.append(str(exc))
        else:
            devices = list(open_registry(load_settings(registry=registry)))
            warnings = [f"rule {r.id} matches no device of the registry" for r in loaded
                        if r.kind != "target" and not any(r.applies_to(d) for d in devices)]
    if as_json:
        echo_json({"ok": not problems, "rules": counts, "errors": problems, "warnings": warnings})
    else:
        for name, n in counts.items():
            click.echo(f"{name}: {n} rule(s) OK")
        for warning in warnings:
            click.echo(f"warning: {warning}", err=True)
    if problems:
        raise click.ClickException("\n".join(problems))


@rules.command("list")
@rules_option
@json_option
def rules_list(rule_files: tuple[Path, ...], as_json: bool) -> None:
    """List the rules: id, kind, domain, metric, limit, severity and source."""
    rows = summarise(_load(rule_files))
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        click.echo(f"{r['id']:<36} {r['kind']:<9} {r['severity']:<13} {r['metric']:<18} {r['limit']:<24} "
                   f"{r['source']}")


@rules.command("run")
@broker_option
@registry_option
@store_option
@rules_option
@click.option("--clock", type=click.Choice(["wall", "event"]), default="wall", show_default=True,
              help="Absence checks against wall time, or against the newest reading time (replays).")
@bus_option
def rules_run(broker: str | None, registry: Path | None, store: Path | None, rule_files: tuple[Path, ...],
              clock: str, bus: str | None) -> None:
    """Run the engine alone: read telemetry and status from MQTT (or the bus), fire and deliver alerts."""
    settings = load_settings(broker=broker, registry=registry, store=store, bus_url=bus)
    setup_logging(settings.log_level)
    reg = open_registry(settings)
    rule_set = _load(rule_files)
    # The runners (alert channels, workflow store, bus client) load only when the engine runs.
    if settings.bus.urls():
        from gulou.app.bus import run_bus_rules

        try:
            run_bus_rules(settings, reg, rule_set, "event" if clock == "event" else "wall",
                          announce=lambda line: click.echo(line, err=True))
        except IngestUsageError as exc:
            raise click.UsageError(str(exc)) from None
        except IngestError as exc:
            raise click.ClickException(str(exc)) from None
        return
    from gulou.app.rules import run_rules

    try:
        asyncio.run(run_rules(settings, reg, rule_set, "event" if clock == "event" else "wall",
                              announce=lambda line: click.echo(line, err=True)))
    except KeyboardInterrupt:
        click.echo("stopped", err=True)


@rules.command("recompute")
@click.option("--since", required=True, metavar="DATE", help="YYYY-MM-DD (Beijing time) or ISO timestamp.")
@click.option("--until", default=None, metavar="DATE", help="Exclusive end (default: end of today).")
@store_option
@registry_option
@json_option
def rules_recompute(since: str, until: str | None, store: Path | None, registry: Path | None,
                    as_json: bool) -> None:
    """Daily values and AQI per air station and per district day from stored readings, the good-day ratio."""
    from gulou.rules.recompute import default_until, parse_day_or_time, recompute_air
    from gulou.sinks.embedded import EmbeddedStore

    settings = load_settings(store=store, registry=registry)
    try:
        start = parse_day_or_time(since)
        end = parse_day_or_time(until) if until else default_until(start)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if not settings.store.exists():
        raise click.ClickException(f"no store at {settings.store}")
    db = EmbeddedStore(settings.store, readonly=True)
    try:
        click.echo(f"recomputing {start.isoformat()} – {end.isoformat()} from {settings.store}", err=True)
        result = recompute_air(db.query_readings, open_registry(settings), start, end)
    finally:
        db.close()
    if as_json:
        echo_json(result)
        return
    for s in result["stations"]:
        click.echo(f"{s['device_id']:<16} {s['site_name'] or '':<16} valid days {s['valid_days']:>3}  "
                   f"good {s['good_days']:>3}  ratio {s['good_day_ratio']}")
    click.echo(f"good-day ratio per district day: {result['good_day_ratio']} "
               f"(station-days pooled: {result['good_station_day_ratio']})")


@click.command("rules")
@click.option("--readings", type=click.IntRange(1000), default=100_000, show_default=True,
              help="Synthetic readings for the evaluation-rate run.")
@click.option("--rate", type=click.IntRange(100), default=10_000, show_default=True,
              help="Publish rate (msg/s) for the latency run.")
@click.option("--seconds", type=click.FloatRange(1), default=10.0, show_default=True)
@click.option("--skip-latency", is_flag=True, help="Only measure evaluations per second.")
@broker_option
@rules_option
@json_option
def bench_rules(readings: int, rate: int, seconds: float, skip_latency: bool, broker: str | None,
                rule_files: tuple[Path, ...], as_json: bool) -> None:
    """Rule evaluations per second, and publish → alert latency p50/p99 through a real broker."""
    from gulou.bench.rules_bench import bench_evaluations, bench_latency

    settings = load_settings(broker=broker)
    reg = open_registry(settings)
    rule_set = _load(rule_files)
    click.echo(f"evaluating {readings} synthetic readings against {len(rule_set)} rules", err=True)
    result: dict[str, Any] = {"evaluation": bench_evaluations(reg, rule_set, readings)}
    if not skip_latency:
        result["latency"] = bench_latency(settings, reg, rule_set, settings.mqtt.url, rate, seconds,
                                          progress=lambda line: click.echo(line, err=True))
    if as_json:
        echo_json(result)
        return
    for section, figures in result.items():
        click.echo(f"[{section}]")
        for key, value in figures.items():
            click.echo(f"  {key:<22} {value}")
