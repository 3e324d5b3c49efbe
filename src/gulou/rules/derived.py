"""Derived series the rules service writes to the time-series store: the hourly AQI of each air reading."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

from gulou.devices.contract import Reading, StatusUpdate
from gulou.devices.registry import Device, Registry
from gulou.rules.engine import Item
from gulou.rules.model import DERIVED
from gulou.rules.notify import Channel, ChannelWorker, DeliveryError
from gulou.rules.standards import AqiResult, aqi
from gulou.rules.standards.tables import hj633
from gulou.tsdb.line_protocol import encode_line
from gulou.tsdb.records import Point, StatusEvent

log = logging.getLogger(__name__)

AQI_MEASUREMENT = "aqi"
# The same pollutants the engine's ``aqi`` metric is computed from (temperature and humidity are not rated).
AQI_INPUTS: tuple[str, ...] = DERIVED["aqi"]


def aqi_level(result: AqiResult) -> int:
    """The HJ 633 level of a result as a number, 1 (一级, 优) to 6 (六级, 严重污染)."""
    for index, band in enumerate(hj633().categories, start=1):
        if band.level == result.level:
            return index
    raise ValueError(f"AQI level {result.level!r} is not in the HJ 633 category table")


def reading_aqi(device: Device, ts: datetime, values: dict[str, float | int | bool]) -> AqiResult | None:
    """Hourly AQI of one air reading, or ``None`` when it carries no pollutant the standard can rate."""
    inputs = {n: float(values[n]) for n in AQI_INPUTS if n in values and not isinstance(values[n], bool)}
    if device.domain != "air" or not inputs:
        return None
    return aqi(inputs, ts, mode="hourly")


def aqi_line(device: Device, ts_ms: int, result: AqiResult) -> str:
    """The ``aqi`` measurement line for one rated reading."""
    tags = {"device": device.id, "street": device.street, "site": device.site.id}
    fields: dict[str, int | str] = {
        "aqi": result.aqi, "level": aqi_level(result), "category": result.category,
        "primary": ",".join(result.primary_pollutants), "standard": result.standard,
    }
    return encode_line(AQI_MEASUREMENT, tags, fields, ts_ms)


class BoundedOutbox:
    """In-memory outbox holding at most ``limit`` batches: beyond that the oldest is dropped, counted and logged."""

    def __init__(self, limit: int = 2000) -> None:
        self.limit = limit
        self.dropped_batches = 0
        self.dropped_lines = 0
        self._items: OrderedDict[int, tuple[str, dict[str, Any]]] = OrderedDict()
        self._next = 0
        self._last_log = 0.0

    def keep(self, channel: str, payload: dict[str, Any], attempts: int, error: str) -> None:
        """Keep one batch, dropping the oldest when full."""
        self._next += 1
        self._items[self._next] = (channel, payload)
        while len(self._items) > self.limit:
            _, (_, oldest) = self._items.popitem(last=False)
            self.dropped_batches += 1
            self.dropped_lines += len(oldest.get("lines", ()))
            now = time.monotonic()
            if now - self._last_log > 10:
                self._last_log = now
                log.warning("%s: outbox full (%d batches); %d derived line(s) dropped so far", channel,
                            self.limit, self.dropped_lines)

    def pending(self, channel: str, limit: int = 100) -> list[tuple[int, dict[str, Any]]]:
        """Oldest waiting batches."""
        return [(i, p) for i, (c, p) in self._items.items() if c == channel][:limit]

    def delivered(self, outbox_id: int) -> None:
        """Forget one."""
        self._items.pop(outbox_id, None)

    def __len__(self) -> int:
        return len(self._items)


class LinesChannel(Channel):
    """Writes a batch of ready-made line-protocol lines with the sink's ``write_lines`` (off the event loop)."""

    def __init__(self, influx: Any, name: str = "aqi") -> None:
        self.influx = influx
        self.name = name

    async def send(self, payload: dict[str, Any]) -> None:
        """Write one batch; raises ``DeliveryError`` when the store does not take it."""
        try:
            await asyncio.to_thread(self.influx.write_lines, payload["lines"])
        except Exception as exc:
            raise DeliveryError(f"derived series write failed: {exc}") from exc


class AqiWriter:
    """Rates each air reading (HJ 633 hourly, rule set by its date) and writes ``aqi`` lines in batches.

    ``observe`` never waits: lines collect in a buffer that is handed to a ``ChannelWorker`` every
    ``flush_s`` seconds or at ``batch_lines`` lines. A failed batch is retried with backoff, then kept in a
    bounded in-memory outbox and redelivered; when that is full the oldest batch is dropped with a warning.
    """

    def __init__(self, influx: Any, registry: Registry, *, flush_s: float = 1.0, batch_lines: int = 500,
                 attempts: int = 4, backoff_s: float = 0.5, redeliver_s: float = 30.0,
                 keep_batches: int = 2000) -> None:
        self.registry = registry
        self.flush_s, self.batch_lines = flush_s, batch_lines
        self.channel = LinesChannel(influx)
        self.outbox = BoundedOutbox(keep_batches)
        self.worker = ChannelWorker(self.channel, self.outbox, attempts=attempts, backoff_s=backoff_s,
                                    redeliver_s=redeliver_s)
        self._lines: list[str] = []
        self.counts = {"rated": 0, "unrated": 0, "batches": 0}

    def observe(self, item: Item) -> AqiResult | None:
        """Rate one evaluated item when it is an air reading and buffer its line; returns the result."""
        if isinstance(item, StatusUpdate | StatusEvent):
            return None
        if isinstance(item, Reading):
            device: Device | None = item.device
            ts_ms = int(item.ts.timestamp() * 1000)
        else:
            assert isinstance(item, Point)
            device = self.registry.get(item.device_id)
            ts_ms = item.ts_ms
        if device is None or device.domain != "air":
            return None
        try:
            result = reading_aqi(device, datetime.fromtimestamp(ts_ms / 1000, UTC), item.values)
        except ValueError as exc:
            # Values the standard refuses (negative, not finite) give no AQI; the reading itself is kept.
            self.counts["unrated"] += 1
            log.debug("no AQI for %s at %d: %s", device.id, ts_ms, exc)
            return None
        if result is None:
            return None
        self.counts["rated"] += 1
        self._lines.append(aqi_line(device, ts_ms, result))
        if len(self._lines) >= self.batch_lines:
            self.flush()
        return result

    def flush(self) -> None:
        """Hand the buffered lines to the delivery worker as one batch (never waits)."""
        if not self._lines:
            return
        lines, self._lines = self._lines, []
        self.counts["batches"] += 1
        self.worker.offer({"alert_id": f"{AQI_MEASUREMENT} batch of {len(lines)} line(s)", "lines": lines})

    async def settle(self, timeout: float) -> bool:
        """Flush, then wait until every batch is written or kept for redelivery; False on timeout."""
        self.flush()
        try:
            # The worker marks a batch done only after its last attempt, so this covers retries too.
            await asyncio.wait_for(self.worker.queue.join(), max(timeout, 0.0))
        except TimeoutError:
            return False
        return not self._lines

    async def run(self) -> None:
        """Flush the buffer every ``flush_s`` seconds."""
        while True:
            await asyncio.sleep(self.flush_s)
            self.flush()

    def stats(self) -> dict[str, Any]:
        """Counters for health output."""
        return {**self.counts, "buffered": len(self._lines), "waiting": len(self.outbox),
                "dropped_lines": self.outbox.dropped_lines, **self.worker.stats}
