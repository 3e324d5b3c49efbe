"""``gulou ingest --bus`` and ``gulou sink --bus``: the collector and the storage writer on the JetStream bus."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from gulou.app.ingest import IngestError, IngestOptions, IngestUsageError
from gulou.bus.base import Bus, BusError
from gulou.bus.bridge import BridgeTotals, BusBridge
from gulou.bus.registry import open_bus
from gulou.bus.sink import BusSink, SinkTotals
from gulou.devices.registry import load_registry
from gulou.settings import Settings
from gulou.sinks.embedded import EmbeddedStore
from gulou.sinks.registry import open_readings_sink
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

    async def work(stop: asyncio.Event) -> BridgeTotals:
        bridge = BusBridge(source, registry, bus, batch_size=options.batch_size,
                           publish_timeout_s=settings.bus.publish_timeout_s,
                           max_future=timedelta(seconds=settings.max_future_s))
        log.info("collector %s: MQTT %s -> bus %s (%d partitions)", options.client_id, settings.mqtt.url,
                 settings.bus.url, bus.partitions)
        totals = await bridge.run(stop)
        bridge.log_health()
        return totals

    return _until_signalled(bus, work)


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
