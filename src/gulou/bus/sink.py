"""A storage writer on the bus: fetch a batch of the ``sink`` group, store it with its accounting, then ack.

Accounting is the collector's, computed from what the stream carries: a valid message is received and stored
in the hour it was observed; a rejected one is received and rejected in the hour it arrived. With InfluxDB
taking the readings, dead letters and accounting go to the embedded store, as without a bus. While the
time-series store is down nothing is acknowledged: the stream keeps the data (it is the spool).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections import Counter
from contextlib import closing
from dataclasses import dataclass

from gulou.backoff import Backoff
from gulou.bus.base import Bus, Consumer, Delivery
from gulou.bus.codec import decode
from gulou.devices.contract import SINK_REJECTED, status_topic, telemetry_topic
from gulou.sinks.embedded import CountRow, EmbeddedStore, Outcome
from gulou.tsdb.line_protocol import point_line, status_line
from gulou.tsdb.records import Batch, DeadLetter, Point, StatusEvent
from gulou.tsdb.writer import Sink, SinkError, SinkRejected

log = logging.getLogger(__name__)
HOUR_MS = 3_600_000
GROUP = "sink"
Key = tuple[int, str, str, Outcome, str, str]  # hour, device, domain, outcome, reason, source


@dataclass
class SinkTotals:
    """What this writer stored since start."""

    stored: int = 0
    rejected: int = 0
    batches: int = 0
    write_failures: int = 0
    undecodable: int = 0
    redelivered_skipped: int = 0


def account(batch: Batch, dead: list[DeadLetter], outcome: Outcome = "stored") -> list[CountRow]:
    """The accounting rows of a stored batch and its dead letters (as the collector counts them)."""
    counts: Counter[Key] = Counter()
    records: list[Point | StatusEvent] = [*batch.points, *batch.statuses]
    for rec in records:
        hour = rec.ts_ms - rec.ts_ms % HOUR_MS
        source = getattr(rec, "source", "mqtt")
        counts[(hour, rec.device_id, rec.domain, "received", "", source)] += 1
        counts[(hour, rec.device_id, rec.domain, outcome, "", source)] += 1
    for d in dead:
        hour = d.received_ms - d.received_ms % HOUR_MS
        counts[(hour, d.device_id or "", d.domain or "", "received", "", d.source)] += 1
        counts[(hour, d.device_id or "", d.domain or "", "rejected", d.reason, d.source)] += 1
    return [CountRow(h, dev, dom, out, reason, n, source)
            for (h, dev, dom, out, reason, source), n in counts.items()]


class BusSink:
    """One member of the ``sink`` group writing to the embedded store, or to a readings sink plus the store."""

    def __init__(self, bus: Bus, store: EmbeddedStore, readings: Sink | None = None, *, batch_size: int = 1000,
                 retry_cap_s: float = 10.0) -> None:
        self.bus, self.store, self.readings = bus, store, readings
        self.batch_size, self.retry_cap_s = batch_size, retry_cap_s
        self.totals = SinkTotals()

    def split(self, deliveries: list[Delivery]) -> tuple[Batch, list[DeadLetter]]:
        """Readings and statuses to store, and dead letters."""
        batch, dead = Batch(), []
        for d in deliveries:
            try:
                record = decode(d)
            except ValueError as exc:
                # Not ours to drop: keep it whole as a dead letter.
                self.totals.undecodable += 1
                log.error("%s", exc)
                dead.append(DeadLetter(f"bus/{d.kind}", d.body, "bad_payload", str(exc), int(time.time() * 1000)))
                continue
            if isinstance(record, Point):
                batch.points.append(record)
            elif isinstance(record, StatusEvent):
                batch.statuses.append(record)
            else:
                dead.append(record)
        return batch, dead

    def commit(self, batch: Batch, dead: list[DeadLetter]) -> None:
        """Store the batch durably with its accounting; raises SinkError while the store is unavailable."""
        if self.readings is None:
            self.store.record(batch, dead, account(batch, dead))
            return
        try:
            if len(batch):
                self.readings.write(batch)
        except SinkRejected as exc:
            log.error("sink refused a batch of %d as invalid: %s", len(batch), exc)
            now_ms = int(time.time() * 1000)
            refused = [DeadLetter(telemetry_topic(p.domain, p.device_id), point_line(p).encode(), SINK_REJECTED,
                                  str(exc), now_ms, p.device_id, p.domain) for p in batch.points]
            refused += [DeadLetter(status_topic(s.domain, s.device_id), status_line(s).encode(), SINK_REJECTED,
                                   str(exc), now_ms, s.device_id, s.domain) for s in batch.statuses]
            self.store.record(None, dead + refused, account(Batch(), dead + refused))
            return
        self.store.record(None, dead, account(batch, dead))

    def already_stored(self, deliveries: list[Delivery]) -> set[int]:
        """Stream sequences of redelivered messages whose record the embedded store already holds.

        A redelivery follows a sink that died, or an ack lost with a NATS node, after its commit: writing
        it again is harmless, counting it again is not. Only the embedded store can be asked (with InfluxDB
        taking the readings, a redelivered reading is written and counted again).
        """
        again = [d for d in deliveries if d.attempt > 1]
        if not again or self.readings is not None:
            return set()
        found: set[int] = set()
        uri = f"{self.store.path.resolve().as_uri()}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True)) as db:
            db.execute("PRAGMA busy_timeout = 10000")
            for d in again:
                try:
                    record = decode(d)
                except ValueError:
                    continue
                if isinstance(record, Point):
                    row = db.execute("SELECT 1 FROM readings WHERE ts_ms = ? AND device_id = ? AND period = ?",
                                     (record.ts_ms, record.device_id, record.period)).fetchone()
                elif isinstance(record, StatusEvent):
                    row = db.execute("SELECT 1 FROM statuses WHERE device_id = ? AND ts_ms = ?",
                                     (record.device_id, record.ts_ms)).fetchone()
                else:
                    # (reason, received_ms) is indexed: the lookup stays cheap in a large table.
                    row = db.execute("SELECT 1 FROM deadletters WHERE reason = ? AND received_ms = ? AND topic = ?"
                                     " AND payload = ?", (record.reason, record.received_ms, record.topic,
                                                          record.payload)).fetchone()
                if row is not None:
                    found.add(d.seq)
        return found

    async def handle(self, consumer: Consumer, deliveries: list[Delivery], stop: asyncio.Event) -> bool:
        """Commit then ack one fetched batch, retrying while the store is down; False if stopped first."""
        done = await asyncio.to_thread(self.already_stored, deliveries)
        if done:
            self.totals.redelivered_skipped += len(done)
            log.info("%d redelivered message(s) were stored before: acknowledged, not counted again", len(done))
        batch, dead = self.split([d for d in deliveries if d.seq not in done])
        backoff = Backoff(0.5, self.retry_cap_s)
        while True:
            try:
                await asyncio.to_thread(self.commit, batch, dead)
                break
            except SinkError as exc:
                self.totals.write_failures += 1
                log.warning("store unavailable (%s): %d message(s) stay in the stream; retrying", exc,
                            len(deliveries))
                if stop.is_set():
                    return False
                # Keep them ours meanwhile so no other member writes them in parallel.
                await consumer.progress(deliveries)
                await backoff.sleep()
        await consumer.ack(deliveries)
        t = self.totals
        t.stored += len(batch)
        t.rejected += len(dead)
        t.batches += 1
        return True

    async def run(self, stop: asyncio.Event) -> SinkTotals:
        """Write until ``stop`` is set; unacknowledged deliveries go to another member after the ack wait."""
        consumer = await self.bus.consumer(GROUP)
        try:
            while not stop.is_set():
                deliveries = await consumer.fetch(self.batch_size, 1.0)
                if deliveries and not await self.handle(consumer, deliveries, stop):
                    break
        finally:
            await consumer.close()
        return self.totals
