"""``gulou ingest``: build a collector from settings and run it (or N of them as processes) until signalled."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from types import FrameType

from gulou.app.prune import Pruner
from gulou.devices.registry import Registry, load_registry
from gulou.ingest.collector import Collector, CollectorConfig, OnStored, Totals
from gulou.ingest.spool import SEGMENT_SUFFIX, DurableWriter, Spool, SpoolLocked
from gulou.ops.service import Endpoint
from gulou.settings import BrokerAddress, Settings
from gulou.sinks.embedded import EmbeddedStore
from gulou.sinks.registry import open_readings_sink
from gulou.sources.base import SourceOptions
from gulou.sources.mqtt import MqttSource
from gulou.sources.registry import DEFAULT_SOURCE, open_source

log = logging.getLogger(__name__)
CONNECT_WAIT_S = 15.0
DRAIN_IDLE_S = 2.0  # a drain ends once the session has delivered nothing for this long


class IngestUsageError(ValueError):
    """The command asks for something the collector cannot do (no broker, workers without sharing)."""


class IngestError(RuntimeError):
    """The collector could not start, or stopped on an infrastructure failure."""


@dataclass(frozen=True)
class IngestOptions:
    """Per-process choices the CLI (or the pipeline) makes on top of Settings."""

    client_id: str
    share_group: str | None
    mqtt5: bool = True
    batch_size: int = 1000
    receive_maximum: int = 2000
    source: str = DEFAULT_SOURCE
    drain: bool = False

    def source_options(self) -> SourceOptions:
        """What the source is built with."""
        return SourceOptions(client_id=self.client_id, share_group=self.share_group,
                             max_in_flight=self.receive_maximum, protocol=None if self.mqtt5 else "3.1.1",
                             drain=self.drain)


def default_client_id(base: str) -> str:
    """The slot's client id from settings (GULOU_MQTT__CLIENT_ID), never the host name.

    A re-created container gets a new host name; a slot id kept in its settings resumes the persistent session
    (and the spool) the broker and the disk hold for that slot.
    """
    return base[:64]


def open_writer(settings: Settings, client_id: str) -> DurableWriter | None:
    """The configured readings sink behind a disk spool, or None when readings go to the embedded store."""
    sink = open_readings_sink(settings)
    if sink is None:
        return None
    # One directory per collector process, never shared (Spool locks it): GULOU_SPOOL__DIR is their parent.
    base = Path(settings.spool.dir) if settings.spool.dir else Path(settings.store).parent
    spool_dir = base / f"spool-{client_id}"
    if settings.spool.dir and any(base.glob(f"*{SEGMENT_SUFFIX}")):
        log.warning("spool segments directly in %s (the layout before one spool per collector) are not replayed "
                    "by this collector: move them into %s while it is stopped", base, spool_dir)
    spool = Spool(spool_dir, settings.spool.max_bytes)
    log.info("%s sink, spool %s (%s bytes max, %s batches pending)", sink.name, spool_dir,
             settings.spool.max_bytes, spool.depth)
    return DurableWriter(sink, spool)


def build_collector(
    settings: Settings,
    registry: Registry,
    broker: BrokerAddress | None,
    options: IngestOptions,
    on_stored: OnStored | None = None,
) -> Collector:
    """A ready-to-start collector wired to the configured source, store and sink.

    ``broker``, when given (the embedded broker), replaces the configured MQTT broker. Raises ``ValueError``
    when the source or a sink is not configured or half-configured.
    """
    if broker is not None:
        url = f"{'mqtts' if broker.tls else 'mqtt'}://{broker.host}:{broker.port}"
        settings = settings.model_copy(update={"mqtt": settings.mqtt.model_copy(update={"url": url})})
    limits = settings.limits
    source = open_source(settings, replace(options.source_options(), max_payload_bytes=limits.max_payload_bytes,
                                           keep_bytes=limits.deadletter_copy_bytes), options.source)
    writer = open_writer(settings, options.client_id)
    store = EmbeddedStore.from_settings(settings)
    config = CollectorConfig(batch_size=options.batch_size, max_future=timedelta(seconds=settings.max_future_s),
                             max_payload_bytes=limits.max_payload_bytes, keep_bytes=limits.deadletter_copy_bytes)
    log.info("collector %s (pid %s): store %s", options.client_id, os.getpid(), settings.store)
    return Collector(source, registry, store, writer=writer, config=config, on_stored=on_stored)


def run_ingest(settings: Settings, options: IngestOptions, workers: int = 1,
               setup_logging: Callable[[str], None] | None = None) -> None:
    """Run the collector (or ``workers`` collector processes) until SIGTERM/SIGINT.

    Raises ``IngestUsageError`` for an impossible request and ``IngestError`` when a collector fails;
    ``setup_logging`` (importable by name) configures logging in each worker process.
    """
    if settings.broker_address() is None:
        raise IngestUsageError("no broker: give --broker mqtt://HOST:PORT (or GULOU_BROKER); "
                               "`gulou run` starts an embedded broker instead")
    if workers > 1 and options.share_group is None:
        raise IngestUsageError("--workers needs a shared subscription (drop --no-share)")
    # /metrics and /healthz (GULOU_OPS__LISTEN) from the reports every collector of this slot writes to the store.
    ops = Endpoint().add_store_collectors(Path(settings.store), options.client_id).serve(settings.ops.listen) \
        if settings.ops.listen else None
    pruner = Pruner(settings).start()  # retention of dead letters and accounting (GULOU_LIMITS__*)
    try:
        if workers > 1:
            run_workers(settings, options, workers, setup_logging)
        else:
            run_collector(settings, options)
    finally:
        pruner.stop()
        if ops is not None:
            ops.stop()


def run_collector(settings: Settings, options: IngestOptions) -> Totals:
    """One collector in this process until SIGTERM/SIGINT; graceful stop stores and acks what was received."""
    registry = load_registry(settings.registry)
    try:
        collector = build_collector(settings, registry, None, options)
    except (ValueError, SpoolLocked) as exc:
        raise IngestError(str(exc)) from None
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    collector.start()
    if not collector.source.wait_connected(CONNECT_WAIT_S):
        log.warning("not connected to %s yet; still retrying", settings.mqtt.url)
    while not stop.wait(1.0):
        if not collector.alive:
            collector.source.stop()
            raise IngestError(f"collector failed: {collector.fatal}")
    log.info("stopping: storing and acknowledging what was received")
    collector.stop()
    t = collector.totals
    log.info("stopped: received %s, stored %s, spooled %s, rejected %s", t.received, t.stored, t.spooled,
             t.rejected)
    return t


def run_drain(settings: Settings, options: IngestOptions, idle_s: float = DRAIN_IDLE_S) -> Totals:
    """Store and ack what the broker queued for a departing collector's session, then end that session.

    Connects with ``options.client_id`` and its persistent session, subscribes to nothing (so no new messages
    are routed to it), and stops once nothing has arrived for ``idle_s``; the DISCONNECT sets the session
    expiry to 0, so the broker forgets the slot. Raises ``IngestError`` when it cannot connect or store.
    """
    if settings.broker_address() is None:
        raise IngestUsageError("no broker: give --broker mqtt://HOST:PORT (or GULOU_BROKER)")
    if not options.mqtt5:
        raise IngestUsageError("--drain needs MQTT 5 (a session expiry set on DISCONNECT)")
    registry = load_registry(settings.registry)
    try:
        collector = build_collector(settings, registry, None, replace(options, drain=True))
    except (ValueError, SpoolLocked) as exc:
        raise IngestError(str(exc)) from None
    collector.start()
    if not collector.source.wait_connected(CONNECT_WAIT_S):
        collector.stop()
        raise IngestError(f"drain of {options.client_id}: not connected to {settings.mqtt.url}")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    quiet_since = time.monotonic()
    seen = -1
    # Done when nothing arrived for idle_s, all of it is settled, and the slot's spool (if any) is replayed:
    # once the session is gone no later run of this id would pick a leftover spool up.
    while not stop.wait(0.1):
        if not collector.alive:
            collector.source.stop()
            raise IngestError(f"drain of {options.client_id} failed: {collector.fatal}")
        t = collector.totals
        if t.received != seen:
            seen, quiet_since = t.received, time.monotonic()
            continue
        spooled = collector.writer.pending if collector.writer is not None else 0
        if t.stored + t.rejected + t.spooled == t.received and time.monotonic() - quiet_since >= idle_s:
            if not spooled:
                break
            log.info("drain of %s: waiting for %s spooled batches to replay", options.client_id, spooled)
            quiet_since = time.monotonic()
    if stop.is_set():
        log.warning("drain of %s interrupted: what was received is stored and acknowledged; the session stays "
                    "(run the drain again)", options.client_id)
    source = collector.source
    if stop.is_set() and isinstance(source, MqttSource):
        source.keep_session()
    collector.stop()
    t = collector.totals
    ended = isinstance(source, MqttSource) and source.session_ended
    log.info("drained %s: received %s, stored %s, spooled %s, rejected %s; session %s", options.client_id,
             t.received, t.stored, t.spooled, t.rejected, "ended" if ended else "kept")
    if not ended:
        raise IngestError(f"drain of {options.client_id} did not end its session: run it again")
    return t


def run_workers(settings: Settings, options: IngestOptions, workers: int,
                setup_logging: Callable[[str], None] | None = None) -> None:
    """Run N collector processes (client ids ``<id>-0`` … ``<id>-N-1``) and forward signals to them."""
    # Spawned, not forked: each child starts with fresh threads and connections, from settings already
    # parsed here, so no command line has to be rebuilt for it.
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=_worker, name=f"collector-{n}",
                             args=(settings, replace(options, client_id=f"{options.client_id}-{n}"), setup_logging))
             for n in range(workers)]
    for p in procs:
        p.start()
    log.info("started %s collector processes", workers)

    def forward(sig: int, _frame: FrameType | None) -> None:
        for p in procs:
            if p.pid is not None and p.exitcode is None:
                os.kill(p.pid, sig)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for p in procs:
        p.join()
    codes = [p.exitcode for p in procs]
    if any(codes):
        raise IngestError(f"collector processes exited with {codes}")


def _worker(settings: Settings, options: IngestOptions, setup_logging: Callable[[str], None] | None) -> None:
    """Entry point of one worker process."""
    from gulou.ingest.gc_policy import tune_gc

    tune_gc()  # a spawned worker starts a fresh interpreter: the command's own setting does not reach it
    if setup_logging is not None:
        setup_logging(settings.log_level)
    try:
        run_collector(settings, options)
    except Exception as exc:
        log.error("collector %s: %s", options.client_id, exc)
        sys.exit(1)
