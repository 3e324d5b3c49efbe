"""The ``gulou`` command: subcommands are listed here explicitly, one module each, imported when they run."""

from __future__ import annotations

import click

from gulou import __version__
from gulou.cli.lazy import LazyCommand, LazyGroup
from gulou.ingest.gc_policy import tune_gc

# name -> where the command lives and the first paragraph of its help (the listing shows it without importing
# the module; tests/unit/cli/test_lazy.py keeps these words equal to the commands' own).
COMMANDS: dict[str, LazyCommand] = {
    "alerts": LazyCommand("gulou.cli.alerts:alerts",
                          "Alerts recorded by the rules engine with who handles them (newest first)."),
    "bench": LazyCommand("gulou.cli.bench:bench", "Measure throughput, latency, loss and memory."),
    "dashboards": LazyCommand("gulou.cli.dashboards:dashboards", "Generate and push Grafana dashboards."),
    "deadletters": LazyCommand("gulou.cli.ingest:deadletters",
                               "List rejected messages with the reason, topic (or HJ 212 MN) and raw payload."),
    "demo": LazyCommand("gulou.cli.run:demo", "Run the pipeline on an embedded broker with simulated devices and "
                        "incidents, showing it live."),
    "devices": LazyCommand("gulou.cli.devices:devices",
                           "Inspect the device registry and catalog; generate load-test registries."),
    "health": LazyCommand("gulou.cli.health:health", "Exit 0 when ok, 1 when degraded, 2 when down, saying why."),
    "hj212": LazyCommand("gulou.cli.hj212:hj212", "Serve HJ 212 stations: packets → readings on the broker, 9014 "
                         "once the broker has them."),
    "ingest": LazyCommand("gulou.cli.ingest:ingest", "Collect telemetry and status over MQTT into the store (or "
                          "onto the bus); runs until SIGTERM/SIGINT."),
    "prune": LazyCommand("gulou.cli.prune:prune", "Delete old dead letters and accounting; the collector does this "
                         "every hour by itself."),
    "query": LazyCommand("gulou.cli.ingest:query", "Read stored readings back from the embedded store."),
    "report": LazyCommand("gulou.cli.report:report", "Daily, monthly and yearly reports of the district's air, "
                          "water, waste sorting, housing and plan targets."),
    "rules": LazyCommand("gulou.cli.rules:rules", "Check, list, run and recompute the rules engine."),
    "run": LazyCommand("gulou.cli.run:run", "Run the pipeline: collector and rules engine (embedded broker and "
                       "store unless configured)."),
    "serve": LazyCommand("gulou.cli.serve:serve", "Serve the alert API: list, acknowledge, assign, close, silence; "
                         "work-order callbacks (OpenAPI at /docs)."),
    "simulate": LazyCommand("gulou.cli.simulate:simulate", "Publish simulated telemetry and status for every "
                            "registry device (or HJ 212 stations with --hj212)."),
    "sink": LazyCommand("gulou.cli.sink:sink", "Write the bus to the store (InfluxDB when GULOU_INFLUX__URL is "
                        "set), acknowledging after each commit."),
    "standards": LazyCommand("gulou.cli.standards:standards", "Compute AQI (HJ 633), GB 3838 water class and "
                             "black-odour level from values."),
    "stats": LazyCommand("gulou.cli.ingest:stats", "Totals received/stored/rejected/spooled, per domain, reason "
                         "and device, plus collector health."),
}


@click.group(cls=LazyGroup, lazy_commands=COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="gulou")
def cli() -> None:
    """Gulou Smart Brain IoT pipeline: devices, simulators, ingest, rules and dashboards."""


def main() -> None:
    """Console-script entry point."""
    tune_gc()
    cli(prog_name="gulou")
