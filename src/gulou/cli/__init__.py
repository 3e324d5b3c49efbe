"""The ``gulou`` command: subcommands are listed here explicitly, one module each."""

from __future__ import annotations

import click

from gulou import __version__
from gulou.cli.alerts import alerts
from gulou.cli.bench import bench
from gulou.cli.dashboards import dashboards
from gulou.cli.devices import devices
from gulou.cli.health import health
from gulou.cli.hj212 import hj212
from gulou.cli.ingest import deadletters, ingest, query, stats
from gulou.cli.prune import prune
from gulou.cli.report import report
from gulou.cli.rules import rules
from gulou.cli.run import demo, run
from gulou.cli.serve import serve
from gulou.cli.simulate import simulate
from gulou.cli.sink import sink
from gulou.cli.standards import standards


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="gulou")
def cli() -> None:
    """Gulou Smart Brain IoT pipeline: devices, simulators, ingest, rules and dashboards."""


cli.add_command(devices)
cli.add_command(simulate)
cli.add_command(standards)
cli.add_command(rules)
cli.add_command(alerts)
cli.add_command(dashboards)
cli.add_command(serve)
cli.add_command(health)
cli.add_command(hj212)
cli.add_command(prune)
cli.add_command(report)
for command in (run, demo, ingest, sink, stats, query, deadletters, bench):
    cli.add_command(command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="gulou")
