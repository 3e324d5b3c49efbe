"""``gulou ingest``, ``stats``, ``query``, ``deadletters``: the collector and what it stored."""

from __future__ import annotations

import csv
import io
import sys
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from gulou.app.ingest import (
    IngestError,
    IngestOptions,
    IngestUsageError,
    default_client_id,
    run_drain,
    run_ingest,
)
from gulou.cli.common import (
    beijing_text,
    bus_option,
    echo_json,
    json_option,
    load_settings,
    read_store,
    registry_option,
    setup_logging,
    store_option,
)
from gulou.devices.base import DOMAINS
from gulou.devices.registry import RegistryError


@click.command()
@click.option("--broker", default=None, metavar="URL",
              help="mqtt://HOST:PORT or mqtts://HOST:PORT (env GULOU_BROKER). Required: gulou ingest has no "
                   "embedded broker; `gulou run` starts one.")
@store_option
@registry_option
@click.option("--client-id", default=None,
              help="The collector slot's MQTT client id (default GULOU_MQTT__CLIENT_ID, gulou-ingest).")
@click.option("--share-group", default=None, help="Shared-subscription group (env GULOU_SHARE_GROUP; default gulou).")
@click.option("--no-share", is_flag=True, help="Subscribe without a shared-subscription group.")
@click.option("--mqtt", "mqtt_version", type=click.Choice(["5", "3.1.1"]), default="5", show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Collector processes in one shared-subscription group.")
@click.option("--batch-size", type=click.IntRange(1, 20000), default=1000, show_default=True)
@click.option("--drain", is_flag=True,
              help="Scale-down: store and ack what the broker queued for --client-id, end its session, exit.")
@bus_option
@click.option("--log-level", default=None, help="DEBUG, INFO, WARNING (env GULOU_LOG_LEVEL).")
def ingest(broker: str | None, store: Path | None, registry: Path | None, client_id: str | None,
           share_group: str | None, no_share: bool, mqtt_version: str, workers: int, batch_size: int,
           drain: bool, bus: str | None, log_level: str | None) -> None:
    """Collect telemetry and status over MQTT into the store (or onto the bus); runs until SIGTERM/SIGINT."""
    settings = load_settings(broker=broker, store=store, registry=registry, share_group=share_group,
                             bus_url=bus, log_level=log_level)
    setup_logging(settings.log_level)
    options = IngestOptions(client_id=client_id or default_client_id(settings.mqtt.client_id),
                            share_group=None if no_share else settings.mqtt.share_group,
                            mqtt5=mqtt_version == "5", batch_size=batch_size)
    try:
        if drain:
            if client_id is None or workers > 1:
                raise IngestUsageError("--drain needs --client-id of the departing collector, one process")
            if settings.bus.urls():
                # The bus client, stream and rules stack load only when a bus is configured.
                from gulou.app.bus import run_bus_ingest

                run_bus_ingest(settings, replace(options, drain=True))
            else:
                run_drain(settings, options)
            return
        if settings.bus.urls():
            from gulou.app.bus import run_bus_ingest

            if workers > 1:
                raise IngestUsageError("with --bus run one collector per process (a fixed --client-id each)")
            run_bus_ingest(settings, options)
            return
        run_ingest(settings, options, workers=workers, setup_logging=setup_logging)
    except IngestUsageError as exc:
        raise click.UsageError(str(exc)) from None
    except (IngestError, RegistryError) as exc:
        raise click.ClickException(str(exc)) from None


@click.command()
@store_option
@bus_option
@json_option
def stats(store: Path | None, bus: str | None, as_json: bool) -> None:
    """Totals received/stored/rejected/spooled, per domain, reason and device, plus collector health."""
    settings = load_settings(store=store, bus_url=bus)
    with closing(read_store(settings)) as db:
        data = db.stats()
    if settings.bus.urls():
        from gulou.app.bus import read_bus_stats

        try:
            data["bus"] = read_bus_stats(settings)
        except IngestError as exc:
            raise click.ClickException(str(exc)) from None
    if as_json:
        echo_json(data)
        return
    click.echo(f"received {data['received']}  stored {data['stored']}  rejected {data['rejected']}  "
               f"spooled {data['spooled']}")
    for domain, row in sorted(data["by_domain"].items()):
        click.echo(f"  {domain:<10} received {row['received']:>9}  stored {row['stored']:>9}  "
                   f"rejected {row['rejected']:>7}")
    for source, row in sorted(data["by_source"].items()):
        click.echo(f"  from {source:<5} received {row['received']:>9}  stored {row['stored']:>9}  "
                   f"rejected {row['rejected']:>7}")
    for reason, n in sorted(data["by_reason"].items(), key=lambda kv: -kv[1]):
        click.echo(f"  rejected {reason:<18} {n}")
    for cid, health in sorted(data.get("collectors", {}).items()):
        click.echo(f"  collector {cid}: {health}")
    if "bus" in data:
        b = data["bus"]
        click.echo(f"  bus: {b['messages']} messages, {b['bytes']} of {b['max_bytes']} bytes, {b['partitions']} "
                   f"partitions, R{b['replicas']}; backlog {b['groups']}")


def _parse_time(value: str | None) -> int | None:
    if value is None:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if value[-1:] in units and value[:-1].lstrip("-").isdigit():
        return int((datetime.now(UTC) - timedelta(seconds=abs(int(value[:-1])) * units[value[-1]])).timestamp() * 1000)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r}: use RFC 3339 (2026-11-26T08:00:00+08:00) or an age like 2h") from None
    if parsed.tzinfo is None:
        raise click.BadParameter(f"{value!r} has no UTC offset")
    return int(parsed.timestamp() * 1000)


@click.command()
@store_option
@click.option("--domain", type=click.Choice(DOMAINS), required=True)
@click.option("--device", default=None, help="Only this device id.")
@click.option("--since", default=None, help="RFC 3339 time or an age such as 2h, 7d.")
@click.option("--until", default=None, help="RFC 3339 time or an age.")
@click.option("--limit", type=int, default=None)
@click.option("--period", type=click.Choice(["rtd", "minute", "hour", "day", "all"]), default="rtd",
              show_default=True, help="Real-time readings, or an HJ 212 station's minute/hour/day means.")
@json_option
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")
def query(store: Path | None, domain: str, device: str | None, since: str | None, until: str | None,
          limit: int | None, period: str, as_json: bool, as_csv: bool) -> None:
    """Read stored readings back from the embedded store."""
    settings = load_settings(store=store)
    with closing(read_store(settings)) as db:
        rows = db.query_readings(domain, device, _parse_time(since), _parse_time(until), limit,
                                 period=None if period == "all" else period)
    if as_json:
        echo_json(rows)
        return
    fields: list[str] = []
    for row in rows:
        fields.extend(k for k in row if k not in fields)
    # People read these two: times in Beijing time with the offset (JSON keeps the store's UTC).
    rows = [{**row, "ts": beijing_text(row["ts"])} if isinstance(row.get("ts"), str) else row for row in rows]
    if as_csv:
        # UTF-8 with a byte-order mark and CRLF: Excel opens it with the Chinese names intact.
        stream = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8-sig", newline="")
        out = csv.DictWriter(stream, fieldnames=fields, lineterminator="\r\n")
        out.writeheader()
        out.writerows(rows)
        stream.flush()
        stream.detach()
        return
    for row in rows:
        click.echo(" ".join(f"{k}={v}" for k, v in row.items() if v is not None))
    click.echo(f"{len(rows)} readings", err=True)


@click.command()
@store_option
@click.option("--reason", default=None, help="Only this rejection reason.")
@click.option("--source", type=click.Choice(["mqtt", "hj212"]), default=None, help="Only messages from this source.")
@click.option("--limit", type=int, default=100, show_default=True)
@json_option
def deadletters(store: Path | None, reason: str | None, source: str | None, limit: int, as_json: bool) -> None:
    """List rejected messages with the reason, topic (or HJ 212 MN) and raw payload."""
    settings = load_settings(store=store)
    with closing(read_store(settings)) as db:
        rows = db.deadletters(limit=limit, reason=reason, source=source)
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        where = f"hj212 MN {row['mn']}" if row["source"] == "hj212" else row["topic"]
        click.echo(f"{beijing_text(row['received_at'])} {row['reason']:<16} {where}  {row['detail']}")
        click.echo(f"    {row['payload'][:200]}")
    click.echo(f"{len(rows)} dead letters", err=True)

