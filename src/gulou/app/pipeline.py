"""The main job: broker (embedded when none is configured), collector, and the rules engine, in one process."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gulou.app.broker import BrokerLease, broker_for
from gulou.app.hj212 import run_gateway, station_book
from gulou.app.ingest import IngestOptions, build_collector, default_client_id
from gulou.devices.contract import Reading, StatusUpdate
from gulou.devices.registry import Registry
from gulou.ingest.collector import Collector
from gulou.ops.metrics import OpsServer
from gulou.ops.service import Endpoint
from gulou.rules.alert_store import AlertStore
from gulou.rules.model import load_rules
from gulou.rules.service import RulesService
from gulou.settings import BrokerAddress, Settings
from gulou.tsdb.writer import LineWriter

log = logging.getLogger(__name__)


@dataclass
class Pipeline:
    """What is running, for the caller's display and for the simulators to publish to."""

    broker: BrokerAddress
    embedded: bool
    collector: Collector
    rules: RulesService | None


async def run_pipeline(
    settings: Settings,
    registry: Registry,
    stop: asyncio.Event,
    *,
    with_rules: bool = True,
    clock: Literal["wall", "event"] = "wall",
    on_ready: Callable[[Pipeline], Coroutine[Any, Any, Any]] | None = None,
) -> Pipeline:
    """Run until ``stop`` is set or ``on_ready``'s task finishes; infrastructure failures raise."""
    async with broker_for(settings) as broker:
        return await _run(settings, registry, stop, broker, with_rules, clock, on_ready)


async def _run(settings: Settings, registry: Registry, stop: asyncio.Event, broker: BrokerLease, with_rules: bool,
               clock: Literal["wall", "event"],
               on_ready: Callable[[Pipeline], Coroutine[Any, Any, Any]] | None) -> Pipeline:
    address, embedded = broker.address, broker.embedded
    loop = asyncio.get_running_loop()
    rules: RulesService | None = None
    collector: Collector | None = None
    ops: OpsServer | None = None
    if settings.hj212.address() is not None:
        station_book(settings, registry)  # a station without its password stops us before anything starts
    try:
        options = IngestOptions(
            client_id=default_client_id(settings.mqtt.client_id),
            # amqtt speaks MQTT 3.1.1 only and has no shared subscriptions.
            share_group=None if embedded else settings.mqtt.share_group,
            mqtt5=not embedded,
        )
        on_stored: Callable[[list[Reading | StatusUpdate]], None] | None = None
        if with_rules:
            # The collector calls back from its writer thread; hand the batch to the loop, never block.
            def on_stored(items: list[Reading | StatusUpdate]) -> None:
                loop.call_soon_threadsafe(_offer_all, rules, items)

        collector = build_collector(settings, registry, address, options, on_stored=on_stored)
        if with_rules:
            sink = collector.writer.sink if collector.writer is not None else None
            influx = sink if isinstance(sink, LineWriter) else None  # the rules write derived series as lines
            rules = RulesService(settings, registry, load_rules(), store=AlertStore(settings.store), influx=influx,
                                 broker=address, clock=clock)
        collector.start()
        if not await asyncio.to_thread(collector.source.wait_connected, 15):
            raise ConnectionError(f"collector could not connect to {address.host}:{address.port}")
        pipeline = Pipeline(address, embedded, collector, rules)
        endpoint: Endpoint | None = None
        if settings.ops.listen:
            # /metrics and /healthz: the collector's reports in the store, the rules engine fed by it.
            endpoint = Endpoint().add_store_collectors(Path(settings.store), options.client_id)
            if rules is not None:
                source = collector.source
                endpoint.add_rules(rules.stats, lambda: source.connected)
            ops = endpoint.serve(settings.ops.listen)
        async with asyncio.TaskGroup() as group:
            if rules is not None:
                group.create_task(rules.run(), name="rules")
            group.create_task(_watch(collector, stop), name="collector-watchdog")
            if settings.hj212.address() is not None:
                # HJ 212 stations publish through the same broker, after the collector is subscribed.
                group.create_task(run_gateway(settings, registry, address, stop, endpoint=endpoint),
                                  name="hj212-gateway")
            push = None
            if settings.report.push_at is not None:
                from gulou.app.report import run_daily_push  # reports load polars and matplotlib: only when on

                # Yesterday's report to the robots each day; the plan's targets judged by this rules service.
                push = group.create_task(run_daily_push(settings, registry, rules=rules), name="report-push")
            if on_ready is not None:
                ready = group.create_task(on_ready(pipeline), name="pipeline-client")
                ready.add_done_callback(lambda _t: stop.set())
            await stop.wait()
            if push is not None:
                push.cancel()
            log.info("stopping: storing and acknowledging what was received")
            await asyncio.to_thread(collector.stop)
            if rules is not None:
                await rules.drain(timeout=10)
                rules.stop()
        return pipeline
    finally:
        if ops is not None:
            ops.stop()
        if collector is not None and collector.alive:
            await asyncio.to_thread(collector.stop)


def _offer_all(rules: RulesService | None, items: list[Reading | StatusUpdate]) -> None:
    if rules is not None:
        for item in items:
            rules.offer(item)


async def _watch(collector: Collector, stop: asyncio.Event) -> None:
    """Surface a dead collector loudly instead of running on without ingestion."""
    while not stop.is_set():
        if not collector.alive:
            raise RuntimeError(f"collector stopped: {collector.fatal}")
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except TimeoutError:
            continue
