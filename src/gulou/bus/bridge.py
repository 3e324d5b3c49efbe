"""The collector on a bus: source → validate → publish to the stream → wait for its ack → acknowledge the source."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import queue
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from gulou.backoff import Backoff
from gulou.bus.base import Bus, BusError, Envelope
from gulou.bus.codec import envelope
from gulou.bus.ledger import DeadLetterIds
from gulou.bus.partition import Partitioner
from gulou.devices.contract import STATION_DEADLETTERS, Decoder, Reading, Rejection
from gulou.devices.registry import Registry
from gulou.hj212.letters import station_letter
from gulou.sinks.embedded import EmbeddedStore
from gulou.sources.base import Delivery, Source
from gulou.tsdb.records import DeadLetter, Point, StatusEvent

log = logging.getLogger(__name__)


@dataclass
class BridgeTotals:
    """What this collector published since start."""

    received: int = 0
    published: int = 0
    duplicates: int = 0
    rejected: int = 0
    batches: int = 0
    publish_failures: int = 0
    dead_ids_reused: int = 0  # redelivered dead letters published again under the id they had the first time
    by_reason: Counter[str] = field(default_factory=Counter)


class BusBridge:
    """Takes batches from a source, publishes every message (readings, statuses, dead letters), then acks."""

    def __init__(self, source: Source, registry: Registry, bus: Bus, *, batch_size: int = 1000,
                 batch_wait_s: float = 0.05, publish_timeout_s: float = 30.0,
                 max_future: timedelta = timedelta(minutes=5), health_every_s: float = 5.0,
                 store: EmbeddedStore | None = None) -> None:
        self.source, self.bus, self.store = source, bus, store
        # Kept beside the collector's health figures: a restart of the same slot finds them again.
        self.dead_ids = DeadLetterIds(store.path, bus.dedupe_window_s) if store is not None else None
        self._dead_ids_due: list[tuple[str, str, bytes, str]] = []
        self.decoder = Decoder(registry, max_future)
        self.partitioner = Partitioner(registry, bus.partitions)
        self.batch_size, self.batch_wait_s = batch_size, batch_wait_s
        self.publish_timeout_s, self.health_every_s = publish_timeout_s, health_every_s
        self.totals = BridgeTotals()
        self._started = time.monotonic()
        # The source never hands out more than max_in_flight unacknowledged messages: a guard, not the limit.
        self._queue: queue.Queue[Delivery] = queue.Queue(maxsize=source.max_in_flight * 2 + 100)

    def envelopes(self, messages: list[Delivery], now: datetime) -> list[Envelope]:
        """One message to publish per delivery: the validated record, or the dead letter with its reason."""
        out: list[Envelope] = []
        for m in messages:
            if m.topic == STATION_DEADLETTERS:  # a packet the HJ 212 gateway refused, kept byte-exact
                letter = station_letter(m.payload, int(m.received * 1000), self.decoder.registry)
                self.totals.by_reason[letter.reason] += 1
                self.totals.rejected += 1
                out.append(self._dead(m, letter))
                continue
            result = self.decoder.decode(m.topic, m.payload, now)
            if isinstance(result, Rejection):
                self.totals.by_reason[result.reason] += 1
                self.totals.rejected += 1
                out.append(self._dead(m, DeadLetter(m.topic, m.payload, result.reason, result.detail,
                                                    int(m.received * 1000), result.device_id, result.domain)))
                continue
            record = Point.from_reading(result) if isinstance(result, Reading) else StatusEvent.from_update(result)
            out.append(envelope(record, self.partitioner.for_device(result.device.id)))
        return out

    def _dead(self, m: Delivery, letter: DeadLetter) -> Envelope:
        """A dead letter's message; a redelivered copy of one published before gets the id it had then."""
        env = envelope(letter, None)
        key = self.source.redelivery_key(m) if self.dead_ids is not None else None
        if key is None or self.dead_ids is None:
            return env
        if m.redelivered and (earlier := self.dead_ids.recall(key, m.topic, m.payload)) is not None:
            env = dataclasses.replace(env, msg_id=earlier)
            self.totals.dead_ids_reused += 1
        self._dead_ids_due.append((key, m.topic, m.payload, env.msg_id))
        return env

    def _take_batch(self) -> list[Delivery]:
        batch: list[Delivery] = []
        try:
            batch.append(self._queue.get(timeout=0.2))
        except queue.Empty:
            return batch
        deadline = time.monotonic() + self.batch_wait_s
        while len(batch) < self.batch_size:
            remaining = deadline - time.monotonic()
            try:
                batch.append(self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    async def publish_batch(self, messages: list[Delivery], stop: asyncio.Event) -> bool:
        """Publish until the stream acknowledged all, then ack the source; False if stopped before that."""
        envs = self.envelopes(messages, datetime.now(UTC))
        if self.dead_ids is not None and self._dead_ids_due:
            # Durable before the stream can have it: a crash after the stream's ack must find the id again.
            await asyncio.to_thread(self.dead_ids.remember, self._dead_ids_due)
            self._dead_ids_due = []
        backoff = Backoff(0.5, 10.0)
        while True:
            try:
                result = await self.bus.publish(envs, self.publish_timeout_s)
                break
            except BusError as exc:
                # Not acknowledged upstream: the broker keeps these, and the rest waits behind them.
                self.totals.publish_failures += 1
                log.error("bus: batch of %d not stored (%s); not acknowledging, retrying", len(envs), exc)
                if stop.is_set():
                    return False
                await backoff.sleep()
        self.source.ack(messages)
        t = self.totals
        t.received += len(messages)
        t.published += result.stored
        t.duplicates += result.duplicates
        t.batches += 1
        return True

    async def run(self, stop: asyncio.Event) -> BridgeTotals:
        """Bridge until ``stop`` is set; then publish and acknowledge what was received, and disconnect."""
        self.source.start(self._queue.put)
        next_health = time.monotonic() + self.health_every_s
        try:
            while True:
                batch = await asyncio.to_thread(self._take_batch)
                if batch and not await self.publish_batch(batch, stop):
                    break
                if time.monotonic() >= next_health:
                    await self.report_health()
                    next_health = time.monotonic() + self.health_every_s
                if stop.is_set():
                    self.source.pause()
                    if self._queue.empty() and not batch:
                        break
        finally:
            self.source.stop()
            await self.report_health()
            if self.dead_ids is not None:
                self.dead_ids.close()
        return self.totals

    def health(self) -> dict[str, object]:
        """The collector's health report, in the shape ``gulou health ingest`` reads (no spool: the stream is it)."""
        t, last = self.totals, self.source.last_message_at
        now = time.monotonic()
        return {"collector": self.source.id, "connected": self.source.connected, "stalled": self.source.stalled,
                "reconnects": self.source.reconnects, "received": t.received, "stored": t.published,
                "duplicates": t.duplicates, "rejected": t.rejected, "publish_failures": t.publish_failures,
                "dead_ids_reused": t.dead_ids_reused,
                "seconds_since_message": None if last is None else round(now - last, 1),
                "uptime_s": round(now - self._started, 1), "spool": {}, "bus": True,
                "updated_at": datetime.now(UTC).isoformat()}

    async def report_health(self) -> None:
        """Log the figures, and keep them in the local store for ``gulou health ingest`` when there is one."""
        self.log_health()
        if self.store is not None:
            await asyncio.to_thread(self.store.set_health, self.source.id, self.health())

    def log_health(self) -> None:
        """One line with the figures operators watch."""
        t = self.totals
        log.info("collector %s: connected %s, received %d, published %d (%d duplicate), rejected %d, "
                 "publish failures %d", self.source.id, self.source.connected, t.received, t.published,
                 t.duplicates, t.rejected, t.publish_failures)
