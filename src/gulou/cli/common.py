"""Helpers every subcommand shares: settings from env + flags, registry loading, JSON output, logging."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from gulou.devices.registry import Registry, RegistryError, load_registry
from gulou.ops.logs import configure
from gulou.settings import Settings
from gulou.sinks.embedded import EmbeddedStore
from gulou.timeutil import CHINA_TZ


def load_settings(**flags: Any) -> Settings:
    """Settings from ``GULOU_*`` variables with the given flags on top; bad values become usage errors."""
    try:
        return Settings().with_overrides(**flags)
    except (ValidationError, ValueError) as exc:
        raise click.UsageError(f"configuration: {exc}") from None


def open_registry(settings: Settings) -> Registry:
    """Load the configured registry (the shipped one by default) or exit with the file:line error."""
    try:
        return load_registry(settings.registry)
    except RegistryError as exc:
        raise click.ClickException(str(exc)) from None


def read_store(settings: Settings) -> EmbeddedStore:
    """The configured store, read-only; a missing one is reported, never created empty."""
    try:
        return EmbeddedStore(Path(settings.store), readonly=True)
    except FileNotFoundError:
        raise click.ClickException(f"no store at {settings.store}: nothing was collected there "
                                   "(give --store or GULOU_STORE)") from None


def beijing_text(rfc3339: str) -> str:
    """An RFC 3339 time (the store gives UTC with ``Z``) in Beijing time with its offset, for people."""
    try:
        moment = datetime.fromisoformat(rfc3339.replace("Z", "+00:00"))
    except ValueError:
        return rfc3339
    return moment.astimezone(CHINA_TZ).isoformat(timespec="milliseconds" if moment.microsecond else "seconds")


def setup_logging(level: str) -> None:
    """Log to stderr so stdout stays clean for ``--json`` output: Beijing-time text, or JSON lines when
    ``GULOU_OPS__LOG_JSON`` is set; the embedded broker's INFO chatter stays out (``gulou.ops.logs``)."""
    try:
        json_lines = Settings().ops.log_json
    except (ValidationError, ValueError):
        json_lines = False
    configure(level, json_lines)


def echo_json(data: Any) -> None:
    """Print data as JSON (UTF-8, Chinese kept readable)."""
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


registry_option = click.option(
    "--registry", type=click.Path(path_type=Path, dir_okay=False), default=None,
    help="Device registry YAML (env GULOU_REGISTRY; default: the shipped Gulou registry).",
)
broker_option = click.option(
    "--broker", default=None, metavar="URL",
    help="mqtt://HOST:PORT or mqtts://HOST:PORT (env GULOU_BROKER; default: an embedded broker).",
)
store_option = click.option(
    "--store", type=click.Path(path_type=Path, dir_okay=False), default=None,
    help="Embedded store file (env GULOU_STORE; default gulou-data/gulou.db).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
bus_option = click.option(
    "--bus", default=None, metavar="URLS",
    help="NATS JetStream servers nats://H1:P1,nats://H2:P2 (env GULOU_BUS; default: no bus, one process).",
)
