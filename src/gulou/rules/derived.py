"""Derived series the rules service writes to the time-series store: each air station's HJ 633 hourly AQI."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from gulou.channels.base import DeliveryError
from gulou.channels.outbox import MemoryOutbox
from gulou.channels.worker import ChannelWorker
from gulou.devices.registry import Device, Registry
from gulou.rules.hourly import HourlyAqi
from gulou.rules.standards import AqiResult
from gulou.rules.standards.tables import hj633
from gulou.tsdb.line_protocol import encode_line
from gulou.tsdb.writer import LineWriter

log = logging.getLogger(__name__)

AQI_MEASUREMENT = "aqi"
# The engine's hourly metric the series is made of.
AQI_METRIC = "aqi"
LineBatch = list[str]


def aqi_level(result: AqiResult) -> int:
    """The HJ 633 level of a result as a number, 1 (一级, 优) to 6 (六级, 严重污染)."""
    for index, band in enumerate(hj633().categories, start=1):
        if band.level == result.level:
            return index
    raise ValueError(f"AQI level {result.level!r} is not in the HJ 633 category table")


def aqi_line(device: Device, ts_ms: int, result: AqiResult, rated: Sequence[str] = ()) -> str:
    """The ``aqi`` measurement line of one station hour (``ts_ms``: the hour's start)."""
    tags = {"device": device.id, "street": device.street, "site": device.site.id}
    fields: dict[str, int | str] = {
        "aqi": result.aqi, "level": aqi_level(result), "category": result.category,
        "primary": ",".join(result.primary_pollutants), "standard": result.standard,
    }
    if rated:
        fields["rated"] = ",".join(rated)  # the valid hourly values the AQI was rated from
    return encode_line(AQI_MEASUREMENT, tags, fields, ts_ms)


class LinesChannel:
    """Writes a batch of ready-made line-protocol lines with ``write_lines`` (off the event loop)."""

    def __init__(self, lines: LineWriter, name: str = AQI_MEASUREMENT) -> None:
        self.lines = lines
        self.name = name

    async def send(self, batch: LineBatch) -> None:
        """Write one batch; raises ``DeliveryError`` when the store does not take it."""
        try:
            await asyncio.to_thread(self.lines.write_lines, batch)
        except Exception as exc:
            raise DeliveryError(f"derived series write failed: {exc}") from exc


def _describe(batch: LineBatch) -> str:
    return f"{AQI_MEASUREMENT} batch of {len(batch)} line(s)"


class AqiWriter:
    """Writes the ``aqi`` line of each closed station hour in batches; the engine keeps the hours (``take_hours``).

    ``observe_hours`` never waits: lines collect in a buffer that is handed to a ``ChannelWorker`` every
    ``flush_s`` seconds or at ``batch_lines`` lines. A failed batch is retried with backoff, then kept in a
    bounded in-memory outbox and redelivered; when that is full the oldest batch is dropped with a warning.
    """

    # Naming the hourly metric makes the engine keep every closed station hour for this writer.
    metrics: tuple[str, ...] = (AQI_METRIC,)

    def __init__(self, lines: LineWriter, registry: Registry, *, flush_s: float = 1.0, batch_lines: int = 500,
                 attempts: int = 4, backoff_s: float = 0.5, redeliver_s: float = 30.0,
                 keep_batches: int = 2000) -> None:
        self.registry = registry
        self.flush_s, self.batch_lines = flush_s, batch_lines
        self.channel = LinesChannel(lines)
        self.outbox: MemoryOutbox[LineBatch] = MemoryOutbox(keep_batches, size=len)
        self.worker = ChannelWorker(self.channel, self.outbox, attempts=attempts, backoff_s=backoff_s,
                                    redeliver_s=redeliver_s, describe=_describe)
        self._lines: LineBatch = []
        self.counts = {"rated": 0, "unrated": 0, "batches": 0}

    def observe_hours(self, hours: Sequence[HourlyAqi]) -> list[AqiResult]:
        """Buffer the line of every closed hour with an AQI; an hour without a valid mean is only counted."""
        rated: list[AqiResult] = []
        for hour in hours:
            device = self.registry.get(hour.device_id)
            if device is None:
                continue
            if hour.result is None:
                # No pollutant had its 45 minutes: HJ 633 gives no hourly AQI, so no line either.
                self.counts["unrated"] += 1
                log.debug("no hourly AQI for %s at %d: %s", device.id, hour.hour_ms, hour.values.invalid())
                continue
            self.counts["rated"] += 1
            self._lines.append(aqi_line(device, hour.hour_ms, hour.result, sorted(hour.values.inputs())))
            rated.append(hour.result)
            if len(self._lines) >= self.batch_lines:
                self.flush()
        return rated

    def flush(self) -> None:
        """Hand the buffered lines to the delivery worker as one batch (never waits)."""
        if not self._lines:
            return
        lines, self._lines = self._lines, []
        self.counts["batches"] += 1
        self.worker.offer(lines)

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
                "dropped_lines": self.outbox.dropped_size, **self.worker.stats}
