"""The collector: source → validate → store (or spool) → acknowledge, with every outcome counted."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from gulou.devices.contract import (
    SINK_REJECTED,
    STATION_DEADLETTERS,
    Decoder,
    Reading,
    Rejection,
    StatusUpdate,
    Topic,
    parse_topic,
    status_topic,
    telemetry_topic,
)
from gulou.devices.registry import Registry
from gulou.hj212.letters import station_letter
from gulou.ingest.inbox import Inbox
from gulou.ingest.spool import DurableWriter, SpoolFull
from gulou.ops.logs import Throttle
from gulou.sinks.embedded import CountRow, EmbeddedStore
from gulou.sources.base import Delivery, Source
from gulou.timeutil import from_ms
from gulou.tsdb.line_protocol import encode_line, point_line, status_line
from gulou.tsdb.records import Batch, DeadLetter, Point, StatusEvent
from gulou.tsdb.writer import SinkError, SinkRejected

log = logging.getLogger(__name__)
# A full spool is retried every 0.5 s; its error is logged at most this often, with the count in between.
SPOOL_FULL_LOG_EVERY_S = 30.0
HOUR_MS = 3_600_000
OnStored = Callable[[list[Reading | StatusUpdate]], None]
# Accounting key: hour, device, domain, outcome, reason, source ("mqtt", or "hj212" for a station's data).
CountKey = tuple[int, str, str, str, str, str]


@dataclass
class CollectorConfig:
    """Batching and health settings of one collector process."""

    batch_size: int = 1000
    batch_wait_s: float = 0.05
    health_interval_s: float = 5.0
    completeness_interval_s: float = 60.0
    max_future: timedelta = timedelta(minutes=5)
    # Larger payloads become dead letters (payload_too_large) holding their first keep_bytes and their size.
    max_payload_bytes: int | None = None
    keep_bytes: int = 4096


@dataclass
class Totals:
    """In-memory counters of this collector since start (the store keeps the durable ones)."""

    received: int = 0
    stored: int = 0
    spooled: int = 0
    rejected: int = 0
    batches: int = 0
    by_domain: Counter[str] = field(default_factory=Counter)
    by_reason: Counter[str] = field(default_factory=Counter)


class AgeSample:
    """A bounded random sample of (store time − observation time): end-to-end latency for live devices."""

    def __init__(self, size: int = 10_000, every: int = 10) -> None:
        self.size, self.every = size, every
        self.values: list[int] = []
        self.seen = 0
        self._rng = random.Random(0)

    def add_batch(self, now_ms: int, points: list[Point]) -> None:
        """Sample every n-th point of a stored batch (reservoir sampling keeps memory fixed)."""
        for p in points[:: self.every]:
            self.seen += 1
            if len(self.values) < self.size:
                self.values.append(now_ms - p.ts_ms)
            else:
                slot = self._rng.randrange(self.seen)
                if slot < self.size:
                    self.values[slot] = now_ms - p.ts_ms

    def percentiles(self) -> dict[str, int] | None:
        """p50 and p99 in milliseconds since start, or None before anything was stored."""
        if not self.values:
            return None
        ordered = sorted(self.values)
        return {"p50": ordered[len(ordered) // 2], "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
                "samples": len(ordered)}


class Collector:
    """One collector: a source feeding a writer thread through a bounded queue.

    ``on_stored`` sees readings and statuses only once durably stored: at once when the sink took them, after
    their replay when they were spooled, never when the sink refused them.
    """

    def __init__(
        self,
        source: Source,
        registry: Registry,
        store: EmbeddedStore,
        writer: DurableWriter | None = None,
        config: CollectorConfig | None = None,
        on_stored: OnStored | None = None,
    ) -> None:
        self.config = config or CollectorConfig()
        self.store = store
        # With no writer, readings go to the embedded store in the same transaction as their accounting.
        self.writer = writer
        if writer is not None:
            writer.on_replayed = self._replayed
            writer.on_rejected = self._rejected_on_replay
        self.decoder = Decoder(registry, self.config.max_future)
        self.on_stored = on_stored
        self.totals = Totals()
        self.ages = AgeSample()
        self.collector_id = source.id
        # The source should never have more than max_in_flight unacked messages out to us (MQTT 5 Receive
        # Maximum), yet Mosquitto 2.0 filled this bound in `gulou bench ingest` bursts: when full, it holds
        # the network thread back, and TCP the broker, so memory stays bounded either way.
        self._queue: Inbox[Delivery] = Inbox(maxsize=source.max_in_flight * 2 + 100)
        self.source = source
        self._stop = threading.Event()
        self._writer_thread: threading.Thread | None = None
        self._started = time.monotonic()
        self._rate_window: tuple[float, int] = (time.monotonic(), 0)
        self.fatal: BaseException | None = None
        # Why the spool takes nothing now ("limit reached", "disk full"), None while it does; health shows it.
        self.spool_full: str | None = None
        self.spool_refusals = 0  # attempts the full spool turned down (the log says it only every 30 s)
        self._throttle = Throttle(SPOOL_FULL_LOG_EVERY_S)

    # -- lifecycle --------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the network and writer threads."""
        self._writer_thread = threading.Thread(target=self._write_loop, name=f"writer-{self.collector_id}",
                                               daemon=True)
        self._writer_thread.start()
        self.source.start(self._queue.put)

    def stop(self) -> None:
        """Stop taking deliveries, store and acknowledge what was received, then disconnect."""
        self.source.pause()
        self._stop.set()
        if self._writer_thread is not None:
            self._writer_thread.join(timeout=60)
        self.source.stop()
        self._write_health()

    @property
    def alive(self) -> bool:
        """False once the writer thread died of an infrastructure error (see ``fatal``)."""
        return self.fatal is None and (self._writer_thread is None or self._writer_thread.is_alive())

    # -- the writer thread --------------------------------------------------------------------------------------
    def _write_loop(self) -> None:
        next_health = time.monotonic()
        next_completeness = time.monotonic() + self.config.completeness_interval_s
        pending: list[Delivery] = []
        try:
            while True:
                # Replay before appending: once the sink is back, the spool drains first and makes room.
                if self.writer is not None and self.writer.pending:
                    self.writer.replay(max_batches=20)
                if not pending:
                    pending = self._take_batch()
                if pending:
                    if self._process(pending):
                        pending = []
                    else:
                        # Spool full: hold these (unacked) and retry; the broker holds the rest.
                        time.sleep(0.5)
                if time.monotonic() >= next_health:
                    self._write_health()
                    next_health = time.monotonic() + self.config.health_interval_s
                if self.writer is not None and time.monotonic() >= next_completeness:
                    self._write_completeness()
                    next_completeness = time.monotonic() + self.config.completeness_interval_s
                if self._stop.is_set() and not self._queue and not pending:
                    break
        except BaseException as exc:  # infrastructure failure: surface loudly, never ack what is not stored
            self.fatal = exc
            log.exception("collector %s writer stopped: %s", self.collector_id, exc)
            raise

    def _take_batch(self) -> list[Delivery]:
        return self._queue.take(self.config.batch_size, 0.2, self.config.batch_wait_s)

    def _process(self, messages: list[Delivery]) -> bool:
        """Validate, store and acknowledge one batch. False when it could not be stored yet (spool full)."""
        now = datetime.now(UTC)
        batch = Batch()
        dead: list[DeadLetter] = []
        counts: Counter[CountKey] = Counter()
        decoded: list[Reading | StatusUpdate] = []
        valid: list[Delivery] = []
        by_domain: Counter[str] = Counter()
        for m in messages:
            recv_ms = int(m.received * 1000)
            if m.topic == STATION_DEADLETTERS:
                # A packet the HJ 212 gateway refused: stored byte-exact as the station sent it.
                letter = station_letter(m.payload, recv_ms, self.decoder.registry)
                hour, device, domain = letter.received_ms - letter.received_ms % HOUR_MS, letter.device_id or "", \
                    letter.domain or ""
                counts[(hour, device, domain, "received", "", letter.source)] += 1
                counts[(hour, device, domain, "rejected", letter.reason, letter.source)] += 1
                dead.append(letter)
                continue
            result = self._oversized(m) or self.decoder.decode(m.topic, m.payload, now)
            if isinstance(result, Rejection):
                hour = recv_ms - recv_ms % HOUR_MS
                device, domain = result.device_id or "", result.domain or ""
                counts[(hour, device, domain, "received", "", "mqtt")] += 1
                counts[(hour, device, domain, "rejected", result.reason, "mqtt")] += 1
                kept = m.payload[:self.config.keep_bytes] if result.reason == "payload_too_large" else m.payload
                dead.append(DeadLetter(m.topic, kept, result.reason, result.detail, recv_ms,
                                       result.device_id, result.domain))
                continue
            decoded.append(result)
            valid.append(m)
            ts_ms = int(result.ts.timestamp() * 1000)
            # Valid messages are counted in the hour they were observed: that is what completeness measures.
            hour = ts_ms - ts_ms % HOUR_MS
            dev = result.device
            counts[(hour, dev.id, dev.domain, "received", "", getattr(result, "source", "mqtt"))] += 1
            by_domain[dev.domain] += 1
            if isinstance(result, Reading):
                batch.points.append(Point.from_reading(result))
            else:
                batch.statuses.append(StatusEvent.from_update(result))
        outcome = "stored"
        if self.writer is None:
            self._count(counts, batch, "stored")
            self.store.record(batch, dead, _rows(counts))
        else:
            try:
                outcome = self.writer.write(batch) if len(batch) else "stored"
            except SpoolFull as exc:
                self.spool_full = exc.reason
                self.spool_refusals += 1
                self._throttle.log(log, logging.ERROR, "spool full", "spool full (%s, %s bytes): not acknowledging;"
                                   " the broker keeps the messages", exc.reason, self.writer.spool.bytes_used)
                return False
            except SinkRejected as exc:
                # The store refuses this data as invalid; retrying cannot help, so keep it as dead letters.
                log.error("sink refused a batch of %s as invalid: %s", len(batch), exc)
                for m, item in zip(valid, decoded, strict=True):
                    recv_ms, dev, source = int(m.received * 1000), item.device, getattr(item, "source", "mqtt")
                    dead.append(DeadLetter(m.topic, m.payload, SINK_REJECTED, str(exc), recv_ms, dev.id, dev.domain,
                                           source=source))
                    counts[(recv_ms - recv_ms % HOUR_MS, dev.id, dev.domain, "rejected", SINK_REJECTED, source)] += 1
                batch = Batch()
                outcome = "rejected"
            if self.spool_full is not None:
                log.info("spool takes batches again (was: %s)", self.spool_full)
                self.spool_full = None
            self._count(counts, batch, outcome)
            self.store.record(None, dead, _rows(counts))
        self.source.ack(messages)
        t = self.totals
        t.received += len(messages)
        t.rejected += len(dead)
        t.batches += 1
        t.by_domain.update(by_domain)
        t.by_reason.update(d.reason for d in dead)
        if outcome == "stored":
            t.stored += len(batch)
        elif outcome == "spooled":
            t.spooled += len(batch)
        if batch.points:
            self.ages.add_batch(int(time.time() * 1000), batch.points)
        # Spooled readings reach on_stored when their replay is stored (_replayed); refused ones never do.
        if self.on_stored is not None and decoded and outcome == "stored":
            self.on_stored(decoded)
        return True

    def _oversized(self, m: Delivery) -> Rejection | None:
        """A payload over the limit, rejected before decoding (its first bytes stay in the dead letter)."""
        limit = self.config.max_payload_bytes
        size = m.size if m.size >= 0 else len(m.payload)
        if limit is None or size <= limit:
            return None
        topic = parse_topic(m.topic)
        device, domain = (topic.device_id, topic.domain) if isinstance(topic, Topic) else (topic.device_id, None)
        return Rejection("payload_too_large", f"{size} bytes, over the limit of {limit}; the first "
                         f"{min(size, self.config.keep_bytes)} bytes are kept", device_id=device, domain=domain)

    @staticmethod
    def _count(counts: Counter[CountKey], batch: Batch, outcome: str) -> None:
        for p in batch.points:
            counts[(p.ts_ms - p.ts_ms % HOUR_MS, p.device_id, p.domain, outcome, "", p.source)] += 1
        for s in batch.statuses:
            counts[(s.ts_ms - s.ts_ms % HOUR_MS, s.device_id, s.domain, outcome, "", "mqtt")] += 1

    def _replayed(self, batch: Batch) -> None:
        """A spooled batch reached the sink: count it stored (and replayed) in its hours."""
        counts: Counter[CountKey] = Counter()
        self._count(counts, batch, "stored")
        self._count(counts, batch, "replayed")
        self.store.add_counts(_rows(counts))
        self.totals.stored += len(batch)
        if self.on_stored is not None:
            items = self._items(batch)
            if items:
                self.on_stored(items)

    def _items(self, batch: Batch) -> list[Reading | StatusUpdate]:
        """A replayed batch as on_stored takes it; devices since removed from the registry are left out."""
        registry = self.decoder.registry
        items: list[Reading | StatusUpdate] = []
        for p in batch.points:
            if (device := registry.get(p.device_id)) is not None:
                items.append(Reading(device=device, ts=from_ms(p.ts_ms), seq=p.seq, values=dict(p.values),
                                     period=p.period, flags=dict(p.flags), invalid=dict(p.invalid),
                                     backfill=p.backfill, source=p.source))
        for s in batch.statuses:
            if (device := registry.get(s.device_id)) is not None:
                items.append(StatusUpdate(device=device, ts=from_ms(s.ts_ms), online=s.online, battery=s.battery,
                                          rssi=s.rssi))
        return items

    def _rejected_on_replay(self, batch: Batch, exc: SinkRejected) -> None:
        """A spooled batch the sink refuses as invalid: keep every record as a dead letter, never drop it."""
        now_ms = int(time.time() * 1000)
        dead = [DeadLetter(telemetry_topic(p.domain, p.device_id), point_line(p).encode(), SINK_REJECTED,
                           str(exc), now_ms, p.device_id, p.domain, source=p.source)
                for p in batch.points]
        dead += [DeadLetter(status_topic(s.domain, s.device_id), status_line(s).encode(), SINK_REJECTED,
                            str(exc), now_ms, s.device_id, s.domain)
                 for s in batch.statuses]
        counts: Counter[CountKey] = Counter()
        self._count(counts, batch, "replayed")
        for d in dead:
            counts[(now_ms - now_ms % HOUR_MS, d.device_id or "", d.domain or "", "rejected", SINK_REJECTED,
                    d.source)] += 1
        self.store.add_deadletters(dead, _rows(counts))

    # -- health ------------------------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """Figures operators watch: rates, spool depth, reconnects, stall state."""
        now = time.monotonic()
        since, seen = self._rate_window
        rate = (self.totals.received - seen) / max(now - since, 1e-6)
        self._rate_window = (now, self.totals.received)
        spool: dict[str, Any] = {}
        if self.writer is not None:
            s = self.writer.spool
            spool = {"depth": s.depth, "points": s.points, "bytes": s.bytes_used, "max_bytes": s.max_bytes,
                     "fill_ratio": round(s.fill_ratio, 4), "full": self.spool_full is not None,
                     "full_reason": self.spool_full, "refusals": self.spool_refusals}
        last = self.source.last_message_at
        return {
            "collector": self.collector_id, "connected": self.source.connected, "stalled": self.source.stalled,
            "reconnects": self.source.reconnects, "received": self.totals.received, "stored": self.totals.stored,
            "spooled": self.totals.spooled, "rejected": self.totals.rejected,
            "rejected_by_reason": dict(self.totals.by_reason), "msgs_per_s": round(rate, 1),
            "seconds_since_message": None if last is None else round(now - last, 1),
            "uptime_s": round(now - self._started, 1), "age_at_store_ms": self.ages.percentiles(), "spool": spool,
            "updated_at": datetime.now(UTC).isoformat(),
        }

    def _write_completeness(self) -> None:
        """Per device, the current and previous hour's expected/received/stored counts, for the dashboard."""
        assert self.writer is not None
        write_lines = getattr(self.writer.sink, "write_lines", None)
        if write_lines is None or self.writer.pending:
            return  # during an outage the spool has priority; the figures are rewritten next time
        now_ms = int(time.time() * 1000)
        since = now_ms - now_ms % HOUR_MS - HOUR_MS
        lines = [
            encode_line("completeness", {"device": row["device_id"], "domain": row["domain"], "street": row["street"]},
                        {"expected": int(row["expected"]), "received": int(row["received"]),
                         "stored": int(row["stored"]), "rejected": int(row["rejected"]), "ratio": float(row["ratio"])},
                        row["hour_ms"])
            for row in self.store.completeness(since, now_ms, self.decoder.registry)
        ]
        try:
            write_lines(lines)
        except SinkError as exc:
            log.warning("completeness figures not written: %s", exc)

    def _write_health(self) -> None:
        health = self.health()
        self.store.set_health(self.collector_id, health)
        if self.writer is not None:
            self.writer.write_health(health)


def _rows(counts: Counter[CountKey]) -> list[CountRow]:
    return [CountRow(hour, dev, dom, outcome, reason, n, source)  # type: ignore[arg-type]
            for (hour, dev, dom, outcome, reason, source), n in counts.items() if n]

