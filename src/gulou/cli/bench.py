"""``gulou bench``: benchmark commands that print figures (never timed tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from gulou.cli.common import echo_json, json_option, load_settings, open_registry
from gulou.cli.rules import bench_rules
from gulou.devices.catalog import CATALOG
from gulou.rules.model import RuleError, load_rules


@click.group()
def bench() -> None:
    """Measure throughput, latency, loss and memory."""


@bench.command("ingest")
@click.option("--messages", type=click.IntRange(1000), default=200_000, show_default=True)
@click.option("--devices", type=click.IntRange(len(CATALOG)), default=1000, show_default=True)
@click.option("--qos", type=click.Choice(["0", "1"]), default="1", show_default=True)
@click.option("--sink", type=click.Choice(["embedded", "influx"]), default="embedded", show_default=True)
@click.option("--workers", type=click.IntRange(1, 16), default=1, show_default=True,
              help="Collector processes in one shared-subscription group.")
@click.option("--batch-size", type=click.IntRange(1, 20000), default=1000, show_default=True)
@click.option("--rate", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Pace the pipeline phase at this many msg/s (0 = burst, flat out). Paced runs give the "
                   "latency at a sustainable load; bursts measure capacity and loss.")
@click.option("--bus", "on_bus", is_flag=True,
              help="Also run the pipeline on a local 3-node JetStream cluster (collectors = --workers, plus "
                   "--sinks storage writers) and compare it with the Mosquitto-only path.")
@click.option("--sinks", type=click.IntRange(1, 16), default=2, show_default=True, help="Storage writers with --bus.")
@json_option
def bench_ingest(messages: int, devices: int, qos: str, sink: str, workers: int, batch_size: int, rate: float,
                 on_bus: bool, sinks: int, as_json: bool) -> None:
    """Publish flat out through Mosquitto; report msgs/s end to end, latency, loss, RSS vs the raw broker."""
    # Imported here: with one collector it runs in this process, whose peak RSS the benchmark reports.
    from gulou.bench.ingest_bench import BenchConfig, as_dict, run_bench

    influx: dict[str, str] = {}
    if sink == "influx":
        settings = load_settings()
        if not settings.influx.url:
            raise click.UsageError("--sink influx needs GULOU_INFLUX_URL, _ORG, _BUCKET (and _TOKEN)")
        influx = {k: str(v) for k, v in {
            "influx_url": settings.influx.url, "influx_org": settings.influx.org,
            "influx_bucket": settings.influx.bucket, "influx_token": settings.influx.secret()}.items() if v}
    config = BenchConfig(messages=messages, devices=devices, qos=int(qos), sink=sink, workers=workers,
                         batch_size=batch_size, rate=rate, influx=influx)
    if on_bus:
        from gulou.bench.bus_bench import as_dict as bus_as_dict
        from gulou.bench.bus_bench import run_bus_bench

        try:
            bus_result = run_bus_bench(config, collectors=workers, sinks=sinks,
                                       progress=lambda line: click.echo(line, err=True))
        except RuntimeError as exc:
            raise click.ClickException(str(exc)) from None
        bus_data = bus_as_dict(bus_result)
        if as_json:
            echo_json(bus_data)
        else:
            for key, value in bus_data.items():
                click.echo(f"{key:<28} {value}")
        return
    try:
        result = run_bench(config, progress=lambda line: click.echo(line, err=True))
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
    data = as_dict(result)
    if as_json:
        echo_json(data)
        return
    for key, value in data.items():
        click.echo(f"{key:<28} {value}")


@click.pass_context
def _bench_rules(ctx: click.Context, /, on_bus: bool, workers: int, live: bool, **options: Any) -> None:
    """Rule evaluations per second in memory; with --bus, through rules workers on a local JetStream cluster."""
    if not on_bus:
        if workers != 1 or live:
            raise click.UsageError("--workers and --live need --bus")
        ctx.invoke(bench_rules, **options)
        return
    from gulou.bench.rules_bus_bench import as_dict as rules_bus_as_dict
    from gulou.bench.rules_bus_bench import run_rules_bus_bench

    settings = load_settings()
    rule_files: tuple[Path, ...] = options["rule_files"]
    try:
        rule_set = load_rules(list(rule_files) or None)
    except RuleError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        result = run_rules_bus_bench(open_registry(settings), rule_set, options["readings"], workers,
                                     live=live, partitions=settings.bus.partitions, broker_url=options["broker"],
                                     rule_files=rule_files, progress=lambda line: click.echo(line, err=True))
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
    data = rules_bus_as_dict(result)
    if options["as_json"]:
        echo_json(data)
        return
    for key, value in data.items():
        if key != "per_worker":
            click.echo(f"{key:<28} {value}")
    for w in data["per_worker"]:
        click.echo(f"worker {w['worker']:<21} evaluated {w['evaluated']}, sent {w['sent']}, "
                   f"{w['cpu_s']} s CPU ({w['cpu_us_per_reading']} µs per reading), {w['warnings']} warning(s), "
                   f"exit code {w['exit_code']}")


# Rule evaluations per second and publish → alert latency (flags defined beside the other rules commands),
# plus the same readings through rules workers on the bus.
bench.add_command(click.Command(
    "rules", callback=_bench_rules, short_help=bench_rules.short_help,
    help=f"{bench_rules.help}\n\nWith --bus: the same readings through rules workers on a local JetStream "
         "cluster, readings/s from the workers' start to backlog 0, every reading evaluated once.",
    params=[*bench_rules.params,
            click.Option(["--bus", "on_bus"], is_flag=True,
                         help="Instead: publish --readings to a local 3-node JetStream cluster (R3), then time "
                              "--workers `gulou rules run --bus` processes until the rules backlog is 0."),
            click.Option(["--workers"], type=click.IntRange(1, 16), default=1, show_default=True,
                         help="Rules worker processes with --bus."),
            click.Option(["--live"], is_flag=True,
                         help="With --bus: start the workers first and time from the first publish (default: "
                              "publish a backlog first and time from the workers' start).")]))


@bench.command("hj212")
@click.option("--connections", type=click.IntRange(1, 20_000), default=2000, show_default=True,
              help="Concurrent station links (one TCP connection each).")
@click.option("--packets", type=click.IntRange(1, 10_000), default=10, show_default=True,
              help="10-pollutant minute packets per link, each sent after the previous one's 9014.")
@click.option("--downstream", type=click.Choice(["memory", "mosquitto"]), default="memory", show_default=True,
              help="memory: the gateway alone; mosquitto: readings published to a private Mosquitto (QoS 1) "
                   "and answered after each PUBACK.")
@click.option("--broker", default=None, metavar="URL", help="Publish to this broker instead (mqtt://HOST:PORT).")
@json_option
def bench_hj212(connections: int, packets: int, downstream: str, broker: str | None, as_json: bool) -> None:
    """HJ 212 gateway: packets/s over many concurrent station links, loss, CPU and memory."""
    from gulou.hj212.bench import as_dict as hj212_as_dict
    from gulou.hj212.bench import run_hj212_bench

    try:
        result = run_hj212_bench(connections, packets, broker, progress=lambda line: click.echo(line, err=True),
                                 mosquitto=downstream == "mosquitto" and broker is None)
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
    data = hj212_as_dict(result)
    if as_json:
        echo_json(data)
        return
    for key, value in data.items():
        click.echo(f"{key:<28} {value}")
