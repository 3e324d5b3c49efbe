"""``gulou ingest --bus`` and ``gulou sink --bus``: the collector and the storage writer on the JetStream bus."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import TypeVar

from gulou.app.ingest import DRAIN_IDLE_S, IngestError, IngestOptions, IngestUsageError
from gulou.bus.base import Bus, BusError
from gulou.bus.bridge import BridgeTotals, BusBridge
from gulou.bus.registry import open_bus
from gulou.bus.rules_worker import BusRulesWorker
from gulou.bus.sink import BusSink, SinkTotals
from gulou.devices.registry import Registry, load_registry
from gulou.rules.alert_store import AlertStore
from gulou.rules.model import AnyRule
from gulou.rules.service import Clock, RulesService
from gulou.settings import Settings
from gulou.sinks.embedded import EmbeddedStore
from gulou.sinks.influx import InfluxSink
from gulou.sinks.registry import open_readings_sink
from gulou.sources.mqtt import MqttSource
from gulou.sources.registry import open_source

log = logging.getLogger(__name__)
T = TypeVar("T")


def _networked_bus(settings: Settings) -> Bus:
    if not settings.bus.urls():
        raise IngestUsageError("no bus: give --bus nats://HOST:PORT[,nats://HOST:PORT...] (or GULOU_BUS)")
    try:
        return open_bus(settings)
    except ValueError as exc:
        raise IngestUsageError(str(exc)) from None


def _until_signalled(bus: Bus, work: Callable[[asyncio.Event], Awaitable[T]]) -> T:
    async def main() -> T:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await bus.start()
        except BusError as exc:
            raise IngestError(f"bus: {exc}") from None
        try:
            return await work(stop)
        finally:
            await bus.close()

    return asyncio.run(main())


def run_bus_ingest(settings: Settings, options: IngestOptions) -> BridgeTotals:
    """The collector publishing to the bus until SIGTERM/SIGINT; the graceful stop publishes and acks what it has."""
    if settings.broker_address() is None:
        raise IngestUsageError("no broker: give --broker mqtt://HOST:PORT (or GULOU_BROKER)")
    bus = _networked_bus(settings)
    registry = load_registry(settings.registry)
    try:
        source = open_source(settings, options.source_options(), options.source)
    except ValueError as exc:
        raise IngestError(str(exc)) from None

    # The local store keeps only this collector's health reports (for `gulou health ingest`).
    store = EmbeddedStore.from_settings(settings)

    async def work(stop: asyncio.Event) -> BridgeTotals:
        bridge = BusBridge(source, registry, bus, batch_size=options.batch_size,
                           publish_timeout_s=settings.bus.publish_timeout_s,
                           max_future=timedelta(seconds=settings.max_future_s), store=store)
        log.info("collector %s: MQTT %s -> bus %s (%d partitions)", options.client_id, settings.mqtt.url,
                 settings.bus.url, bus.partitions)
        if not options.drain:
            return await bridge.run(stop)
        done = asyncio.Event()  # the bridge's own stop publishes and acks the rest, then ends the session
        watch = asyncio.create_task(_drain_watch(bridge, stop, done))
        try:
            return await bridge.run(done)
        finally:
            watch.cancel()

    try:
        totals = _until_signalled(bus, work)
    finally:
        store.close()
    if options.drain:
        ended = isinstance(source, MqttSource) and source.session_ended
        log.info("drained %s: received %s, published %s, rejected %s; session %s", options.client_id,
                 totals.received, totals.published, totals.rejected, "ended" if ended else "kept")
        if not ended:
            raise IngestError(f"drain of {options.client_id} did not end its session: run it again")
    return totals


async def _drain_watch(bridge: BusBridge, stop: asyncio.Event, done: asyncio.Event) -> None:
    """End a drain once nothing arrived for ``DRAIN_IDLE_S``; a signal ends it keeping the session."""
    seen, quiet_since = -1, time.monotonic()
    while not stop.is_set():
        if bridge.totals.received != seen:
            seen, quiet_since = bridge.totals.received, time.monotonic()
        elif time.monotonic() - quiet_since >= DRAIN_IDLE_S:
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.1)
    if stop.is_set() and isinstance(bridge.source, MqttSource):
        bridge.source.keep_session()
    done.set()


def run_sink(settings: Settings, batch_size: int = 1000) -> SinkTotals:
    """A storage writer of the ``sink`` group until SIGTERM/SIGINT (readings to InfluxDB when configured)."""
    bus = _networked_bus(settings)
    try:
        readings = open_readings_sink(settings)
    except ValueError as exc:
        raise IngestError(str(exc)) from None
    store = EmbeddedStore.from_settings(settings)

    async def work(stop: asyncio.Event) -> SinkTotals:
        log.info("sink: bus %s -> %s", settings.bus.url, readings.name if readings else settings.store)
        totals = await BusSink(bus, store, readings, batch_size=batch_size).run(stop)
        log.info("sink stopped: stored %d, rejected %d in %d batches; %d write failure(s)", totals.stored,
                 totals.rejected, totals.batches, totals.write_failures)
        return totals

    try:
        return _until_signalled(bus, work)
    finally:
        if readings is not None:
            readings.close()
        store.close()


def default_worker_id() -> str:
    """Host and process: unique among live workers (a restarted worker is a new member)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"{socket.gethostname()}-{os.getpid()}")[:64]


def run_bus_rules(settings: Settings, registry: Registry, rule_set: Sequence[AnyRule], clock: Clock,
                  announce: Callable[[str], None], worker: str | None = None) -> None:
    """A rules worker on the bus until SIGTERM/SIGINT: its share of the partitions, alerts to the channels."""
    bus = _networked_bus(settings)
    me = worker or default_worker_id()

    async def work(stop: asyncio.Event) -> None:
        influx = InfluxSink.from_settings(settings) if settings.influx.url else None
        store = AlertStore(settings.store)
        service = RulesService(settings, registry, rule_set, store=store, influx=influx,
                               broker=settings.broker_address(), clock=clock, durable_outbox=False)
        # Each channel's deliveries are marked on the transition's claim, so a takeover resends only what the
        # channels of a dead worker never delivered.
        rules_worker = BusRulesWorker(bus, registry, rule_set, service.dispatch, me,
                                      channels=[c.name for c in service.channels], event_clock=clock == "event")
        service.on_delivered(rules_worker.delivered)
        announce(f"rules worker {me}: {len(rule_set)} rules, {bus.partitions} partitions on {settings.bus.url}")
        try:
            async with asyncio.TaskGroup() as tg:
                delivery = tg.create_task(service.run(), name="rules-delivery")
                await rules_worker.run(stop)
                await service.drain(timeout=10.0)
                try:
                    await rules_worker.ledger.flush()
                except BusError as exc:
                    log.warning("rules worker %s: the last delivery marks were not written: %s", me, exc)
                service.stop()
                await delivery
        finally:
            store.close()
        log.info("rules worker %s stopped: evaluated %d, sent %d, suppressed %d already sent, took over %d", me,
                 rules_worker.evaluated, rules_worker.sent, rules_worker.suppressed, rules_worker.ledger.taken_over)

    _until_signalled(bus, work)


def read_bus_stats(settings: Settings) -> dict[str, object]:
    """The stream's fill against its limits and each group's backlog, for ``gulou stats``."""
    bus = _networked_bus(settings)

    async def read() -> dict[str, object]:
        try:
            await bus.start()
            stats = await bus.stats()
        except BusError as exc:
            raise IngestError(f"bus: {exc}") from None
        finally:
            await bus.close()
        return {"kind": stats.kind, "messages": stats.messages, "bytes": stats.bytes, "max_bytes": stats.max_bytes,
                "fill_ratio": round(stats.bytes / stats.max_bytes, 4) if stats.max_bytes else None,
                "max_age_s": stats.max_age_s, "partitions": stats.partitions, "replicas": stats.replicas,
                "groups": {name: {"pending": g.pending, "unacked": g.unacked} for name, g in stats.groups.items()}}

    return asyncio.run(read())
