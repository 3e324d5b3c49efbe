"""``gulou devices``: the registry and the catalog of device types."""

from __future__ import annotations

import time
from pathlib import Path

import click

from gulou.cli.common import echo_json, json_option, load_settings, open_registry, registry_option
from gulou.devices.catalog import CATALOG, DOMAINS
from gulou.devices.registry import dump_registry, load_registry
from gulou.devices.synthetic import synthetic_registry


@click.group()
def devices() -> None:
    """Inspect the device registry and catalog; generate load-test registries."""


@devices.command("list")
@registry_option
@click.option("--domain", type=click.Choice(DOMAINS), default=None, help="Only devices of this domain.")
@json_option
def list_devices(registry: Path | None, domain: str | None, as_json: bool) -> None:
    """List registered devices."""
    reg = open_registry(load_settings(registry=registry))
    rows = [d.as_dict() for d in reg.by_domain(domain)]
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        click.echo(f"{row['id']:<18} {row['domain']:<9} {row['street']:<6} {row['site']:<16} {row['name']}")
    click.echo(f"{len(rows)} devices from {reg.source}", err=True)


@devices.command("catalog")
@json_option
def catalog(as_json: bool) -> None:
    """Show every device type with its metrics, units and physical ranges."""
    entries = [t.describe() for t in CATALOG.values()]
    if as_json:
        echo_json(entries)
        return
    for entry in entries:
        click.echo(f"{entry['type']} ({entry['domain']}, every {entry['interval_s']} s): {entry['description']}")
        for m in entry["metrics"]:
            rng = "" if m["min"] is None else f" [{m['min']:g} … {m['max']:g}]"
            click.echo(f"    {m['name']:<15} {m['unit']:<7}{rng}  {m['description']}")


@devices.command("check")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@json_option
def check(file: Path, as_json: bool) -> None:
    """Validate a registry file; exits non-zero naming the file and line of the first problem."""
    reg = open_registry(load_settings(registry=file))
    summary = {d: len(reg.by_domain(d)) for d in DOMAINS}
    if as_json:
        echo_json({"file": str(file), "devices": len(reg), "sites": len(reg.sites), "by_domain": summary})
    else:
        click.echo(f"{file}: OK, {len(reg)} devices at {len(reg.sites)} sites ({summary})")


@devices.command("generate")
@click.option("--count", type=click.IntRange(min=len(CATALOG)), required=True,
              help="Number of devices (at least one per device type).")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Output file (default: registry-<count>.yaml).")
@click.option("--seed", type=int, default=1, show_default=True)
@json_option
def generate(count: int, out: Path | None, seed: int, as_json: bool) -> None:
    """Write a synthetic registry of COUNT devices for load tests, then check it loads."""
    target = out or Path(f"registry-{count}.yaml")
    started = time.monotonic()
    click.echo(f"generating {count} devices …", err=True)
    sites, rows = synthetic_registry(count, seed)
    click.echo(f"writing {target} …", err=True)
    target.write_text(dump_registry(sites, rows), encoding="utf-8")
    click.echo(f"validating {target} (about 4 s per 10,000 devices) …", err=True)
    reg = load_registry(target)
    result = {"file": str(target), "devices": len(reg), "seconds": round(time.monotonic() - started, 2)}
    if as_json:
        echo_json(result)
    else:
        click.echo(f"wrote {target}: {len(reg)} devices in {result['seconds']} s")
