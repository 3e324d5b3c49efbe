"""Assembles a collector from settings: store, optional InfluxDB sink with its spool, MQTT link."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from gulou.devices.contract import Reading, StatusUpdate
from gulou.devices.registry import Registry
from gulou.ingest.collector import Collector, CollectorConfig, default_link
from gulou.ingest.influx import InfluxSink
from gulou.ingest.spool import DurableWriter, Spool
from gulou.ingest.store import EmbeddedStore
from gulou.settings import BrokerAddress, Settings

log = logging.getLogger(__name__)


@dataclass
class IngestOptions:
    """Per-process choices the CLI makes on top of Settings."""

    client_id: str
    share_group: str | None
    mqtt5: bool = True
    batch_size: int = 1000
    receive_maximum: int = 2000


def default_client_id(base: str) -> str:
    """A stable client id per host, so a restarted collector resumes its persistent session."""
    return f"{base}-{socket.gethostname()}"[:64]


def open_store(settings: Settings) -> EmbeddedStore:
    """Open (creating) the embedded store file named by settings."""
    path = Path(settings.store)
    path.parent.mkdir(parents=True, exist_ok=True)
    return EmbeddedStore(path)


def open_writer(settings: Settings, client_id: str) -> DurableWriter | None:
    """The InfluxDB sink behind a disk spool when GULOU_INFLUX_URL is set; None for the embedded store."""
    if not settings.influx.url:
        return None
    required = (("GULOU_INFLUX_ORG", settings.influx.org), ("GULOU_INFLUX_BUCKET", settings.influx.bucket))
    missing = [name for name, value in required if not value]
    if missing:
        raise ValueError(f"GULOU_INFLUX_URL is set but {', '.join(missing)} is not")
    sink = InfluxSink.from_settings(settings)
    spool_dir = settings.spool.dir or Path(settings.store).parent / f"spool-{client_id}"
    spool = Spool(Path(spool_dir), settings.spool.max_bytes)
    log.info("InfluxDB sink %s (org %s, bucket %s), spool %s (%s bytes max, %s batches pending)",
             settings.influx.url, settings.influx.org, settings.influx.bucket, spool_dir,
             settings.spool.max_bytes, spool.depth)
    return DurableWriter(sink, spool)


def build_collector(
    settings: Settings,
    registry: Registry,
    broker: BrokerAddress,
    options: IngestOptions,
    on_stored: Callable[[list[Reading | StatusUpdate]], None] | None = None,
) -> Collector:
    """A ready-to-start collector wired to the configured store and sink."""
    link = default_link(
        options.client_id, options.share_group, mqtt5=options.mqtt5, receive_maximum=options.receive_maximum,
        username=settings.mqtt.username, password=settings.mqtt.secret(),
        ca_file=str(settings.mqtt.ca_file) if settings.mqtt.ca_file else None,
    )
    store = open_store(settings)
    writer = open_writer(settings, options.client_id)
    config = CollectorConfig(batch_size=options.batch_size, max_future=timedelta(seconds=settings.max_future_s))
    log.info("collector %s (pid %s): store %s", options.client_id, os.getpid(), settings.store)
    return Collector(broker, link, registry, store, writer=writer, config=config, on_stored=on_stored)
