"""The rules service: a bounded intake queue feeding the engine, delivery workers, and an MQTT reader."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import aiomqtt

from gulou.backoff import Backoff
from gulou.channels.base import Channel, ChannelContext, describe
from gulou.channels.mqtt import mqtt_client
from gulou.channels.outbox import outbox_for
from gulou.channels.registry import build_channels
from gulou.channels.worker import ChannelWorker
from gulou.devices.contract import STATUS_FILTER, TELEMETRY_FILTER, Decoder, Rejection
from gulou.devices.registry import Registry
from gulou.rules.alert_store import AlertStore
from gulou.rules.alerts import AlertTransition
from gulou.rules.derived import AqiWriter
from gulou.rules.engine import Engine, Item
from gulou.rules.model import AnyRule
from gulou.rules.targets import TargetVerdict
from gulou.settings import BrokerAddress, Settings
from gulou.timeutil import from_ms
from gulou.tsdb.writer import LineWriter

log = logging.getLogger(__name__)
Clock = Literal["wall", "event"]
# How long (wall seconds) an observed arrival lag keeps holding the event clock back.
LAG_MEMORY_S = 30.0


class RulesService:
    """Runs the engine on its own queue so ingestion never waits for rules or delivery."""

    def __init__(self, settings: Settings, registry: Registry, rules: Sequence[AnyRule], *,
                 store: AlertStore | None = None, influx: LineWriter | None = None,
                 broker: BrokerAddress | None = None, channels: Sequence[Channel] | None = None,
                 clock: Clock = "wall", lateness_s: float = 600.0, renotify_s: float | None = 3600.0,
                 queue_size: int = 100_000, tick_s: float = 5.0, save_every_s: float = 30.0,
                 retry_attempts: int = 4, retry_backoff_s: float = 0.5, redeliver_s: float = 30.0,
                 channel_queue_size: int = 1000, derived_flush_s: float = 1.0,
                 derived_batch_lines: int = 500, durable_outbox: bool = True) -> None:
        self.settings = settings
        self.registry = registry
        # Each air station's hourly AQI (HJ 633, from valid hourly means) goes to the store as ``aqi``.
        self.aqi_writer = AqiWriter(influx, registry, flush_s=derived_flush_s, batch_lines=derived_batch_lines,
                                    attempts=retry_attempts, backoff_s=retry_backoff_s,
                                    redeliver_s=redeliver_s) if influx is not None else None
        self.engine = Engine(rules, registry, lateness_s=lateness_s, default_renotify_s=renotify_s,
                             derive_always=self.aqi_writer.metrics if self.aqi_writer is not None else ())
        self.store = store
        self.broker = broker
        self.clock = clock
        self.tick_s, self.save_every_s = tick_s, save_every_s
        self.queue: asyncio.Queue[Item] = asyncio.Queue(maxsize=queue_size)
        self.dropped = 0
        self._last_drop_log = 0.0
        self._event_ms: int | None = None
        self._lag_ms, self._lag_at = 0, 0.0  # largest recent arrival lag behind the newest event time
        self._stop = asyncio.Event()
        if store is not None:
            snap = store.load_state()
            if snap is not None:
                try:
                    self.engine.restore(snap)
                    log.info("rules engine resumed with %d active alert(s)", len(self.engine.book.active))
                except (ValueError, KeyError, TypeError) as exc:
                    log.warning("ignoring unusable saved engine state: %s", exc)
        # On the bus the claims and the partition snapshots are the durable record of what is unsent: a
        # durable outbox as well would resend, after a restart, what another worker has taken over.
        self.durable_outbox = durable_outbox
        self.channels = list(channels) if channels is not None else \
            build_channels(settings, ChannelContext(store=store, lines=influx, broker=broker, clock=self.now))
        self.workers = [
            ChannelWorker(c, outbox_for(c, store if durable_outbox else None), queue_size=channel_queue_size,
                          attempts=retry_attempts, backoff_s=retry_backoff_s, redeliver_s=redeliver_s,
                          describe=describe)
            for c in self.channels
        ]

    # -- intake -----------------------------------------------------------------------------------------
    def offer(self, item: Item) -> bool:
        """Queue a reading or status for evaluation without waiting; when full, count, log and drop."""
        if getattr(item, "period", "rtd") != "rtd":
            return False  # a station's minute/hour/day means are for reports; the rules judge real-time values
        try:
            self.queue.put_nowait(item)
            return True
        except asyncio.QueueFull:
            self.dropped += 1
            now = time.monotonic()
            if now - self._last_drop_log > 10:
                self._last_drop_log = now
                log.warning("rules queue full (%d): %d item(s) not evaluated so far", self.queue.maxsize,
                            self.dropped)
            return False

    # -- running ----------------------------------------------------------------------------------------
    async def run(self) -> None:
        """Evaluate, tick, deliver and save state until ``stop()``; the state is saved on the way out."""
        try:
            async with asyncio.TaskGroup() as tg:
                tasks = [tg.create_task(self._evaluate(), name="rules-evaluate"),
                         tg.create_task(self._ticker(), name="rules-tick"),
                         tg.create_task(self._saver(), name="rules-save")]
                for channel, worker in zip(self.channels, self.workers, strict=True):
                    tasks += [tg.create_task(channel.run(), name=f"rules-channel-{channel.name}"),
                              tg.create_task(worker.run(), name=f"rules-deliver-{channel.name}"),
                              tg.create_task(worker.redeliver(), name=f"rules-redeliver-{channel.name}")]
                if self.aqi_writer is not None:
                    lines = self.aqi_writer.worker
                    tasks += [tg.create_task(self.aqi_writer.run(), name="rules-aqi-flush"),
                              tg.create_task(lines.run(), name="rules-deliver-aqi"),
                              tg.create_task(lines.redeliver(), name="rules-redeliver-aqi")]
                await self._stop.wait()
                await self.drain(timeout=5.0)
                for t in tasks:
                    t.cancel()
        finally:
            for worker in self.workers:
                kept = worker.spill()
                if kept:
                    log.info("%s: %d notification(s) %s", worker.channel.name, kept,
                             "kept for delivery after the restart" if self.durable_outbox else "left unsent")
            self.save_state()

    def stop(self) -> None:
        """Ask ``run()`` to finish."""
        self._stop.set()

    async def drain(self, timeout: float = 10.0) -> bool:
        """Wait until items are evaluated, notifications handed to channels and derived lines written or kept."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.queue.empty() and all(w.queue.empty() for w in self.workers) and not self._busy:
                if self.aqi_writer is None:
                    return True
                return await self.aqi_writer.settle(deadline - time.monotonic())
            await asyncio.sleep(0.02)
        return False

    _busy = False

    async def _evaluate(self) -> None:
        while True:
            item = await self.queue.get()
            self._busy = True
            # Work through what is already queued without yielding per item: a task switch per reading
            # would cost more than evaluating it. Bounded so delivery and intake still get their turn.
            for _ in range(1000):
                self._process_one(item)
                try:
                    item = self.queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
            else:
                self._process_one(item)
            self._busy = False
            await asyncio.sleep(0)

    def _process_one(self, item: Item) -> None:
        try:
            evaluation = self.engine.evaluate(item)
            self.dispatch(evaluation.transitions)
            if self.aqi_writer is not None:
                self.aqi_writer.observe_hours(self.engine.take_hours())
            if self.clock == "event":
                when = evaluation.ts_ms
                if self._event_ms is None or when > self._event_ms:
                    self._event_ms = when
                else:
                    self._note_lag(self._event_ms - when)
        except Exception:  # one bad item must not stop the engine
            log.exception("rules engine failed on %r", item)

    def _note_lag(self, lag_ms: int) -> None:
        now = time.monotonic()
        if lag_ms >= self._lag_ms or now - self._lag_at > LAG_MEMORY_S:
            self._lag_ms, self._lag_at = lag_ms, now

    def now(self) -> datetime:
        """The engine's clock: wall time, or the event-time watermark (simulations, replays).

        The watermark trails the newest event time by the lateness bound plus the largest arrival lag seen
        lately: readings of other devices travel on other connections, so a device whose readings arrive
        behind the newest ones is in flight, not silent.
        """
        if self.clock == "event":
            if self._event_ms is None:
                return datetime.now(UTC)
            lag_ms = self._lag_ms if time.monotonic() - self._lag_at <= LAG_MEMORY_S else 0
            return from_ms(self._event_ms - lag_ms - self.engine.lateness_ms)
        return datetime.now(UTC)

    def tick(self) -> list[AlertTransition]:
        """Run clock-driven checks now and dispatch what they produce."""
        transitions = self.engine.tick(self.now())
        self.dispatch(transitions)
        if self.aqi_writer is not None:
            self.aqi_writer.observe_hours(self.engine.take_hours())
        return transitions

    def judge_targets(self, verdicts: Sequence[TargetVerdict], at: datetime) -> list[AlertTransition]:
        """Judge the plan's targets (``target`` rules; the report job calls this) and dispatch what changes."""
        transitions = self.engine.judge_targets(verdicts, at)
        self.dispatch(transitions)
        return transitions

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            self.tick()

    def dispatch(self, transitions: Sequence[AlertTransition], skip: Collection[str] = ()) -> None:
        """Hand transitions to every channel's queue but those named in ``skip`` (never waits)."""
        for t in transitions:
            for w in self.workers:
                if w.channel.name not in skip:
                    w.offer(t)

    def on_delivered(self, listener: Callable[[str, AlertTransition], None]) -> None:
        """Tell ``listener`` (channel name, transition) after each delivery, first attempt or redelivery."""
        for w in self.workers:
            w.on_delivered = listener

    async def _saver(self) -> None:
        while True:
            await asyncio.sleep(self.save_every_s)
            await asyncio.to_thread(self.save_state)

    def save_state(self) -> None:
        """Persist the engine snapshot to the alert store (when there is one)."""
        if self.store is not None:
            try:
                self.store.save_state(self.engine.snapshot())
            except Exception as exc:
                log.warning("could not save rules engine state: %s", exc)

    def channels_ready(self) -> bool:
        """Whether every channel could deliver now (connected channels are connected)."""
        return all(c.ready() for c in self.channels)

    def stats(self) -> dict[str, Any]:
        """Counters for health output."""
        return {"queued": self.queue.qsize(), "dropped": self.dropped, "engine": vars(self.engine.stats).copy(),
                "channels": {w.channel.name: dict(w.stats) for w in self.workers},
                "active_alerts": len(self.engine.book.active),
                "derived": {"aqi": self.aqi_writer.stats()} if self.aqi_writer is not None else {}}


class MqttSource:
    """Subscribes to all telemetry and status topics with its own client id and feeds a RulesService."""

    def __init__(self, settings: Settings, broker: BrokerAddress, service: RulesService,
                 client_id: str | None = None) -> None:
        self.settings = settings
        self.broker = broker
        self.service = service
        self.client_id = client_id or f"{settings.mqtt.client_id}-rules-{uuid.uuid4().hex[:8]}"
        self.decoder = Decoder(service.registry)
        self.received = 0
        self.rejected = 0
        self.reconnects = 0
        self.connected = asyncio.Event()

    async def run(self) -> None:
        """Read messages forever, reconnecting with jittered backoff."""
        backoff = Backoff(0.5, 30.0)
        while True:
            try:
                async with mqtt_client(self.settings, self.broker, self.client_id) as client:
                    await client.subscribe([(TELEMETRY_FILTER, 1), (STATUS_FILTER, 1)])
                    self.connected.set()
                    backoff.reset()
                    async for message in client.messages:
                        raw = message.payload
                        self.handle(message.topic.value,
                                    bytes(raw) if isinstance(raw, bytes | bytearray) else str(raw).encode())
            except aiomqtt.MqttError as exc:
                log.warning("rules reader disconnected: %s", exc)
            self.connected.clear()
            self.reconnects += 1
            await backoff.sleep()

    def handle(self, topic: str, payload: bytes) -> None:
        """Decode one message and offer it to the service."""
        self.received += 1
        decoded = self.decoder.decode(topic, payload)
        if isinstance(decoded, Rejection):
            self.rejected += 1
            return
        self.service.offer(decoded)
