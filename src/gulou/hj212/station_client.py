"""HJ 212 station simulator, the link half: a data logger's TCP client and the run over many stations.

A ``StationClient`` behaves as S17 §6.2 describes a logger: it waits for the 9014/9013 answer to each
packet that asks for one and resends after the timeout, up to the retry count (a lost 9014 therefore
produces a resend the gateway must store only once); it answers the platform's 1011/1012 requests with
9011, the data and 9012. ``run_stations`` drives several stations from the project's device simulators
(daily patterns and scenario incidents), one client and one send queue per station.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from gulou.devices.registry import Registry
from gulou.hj212 import build
from gulou.hj212.framing import Frame, Framer
from gulou.hj212.segment import Packet, parse_segment
from gulou.hj212.simulator import Aggregator, FaultPlan, Outgoing, StationEncoder, calibrating
from gulou.simulators.generator import Generator
from gulou.simulators.scenario import Scenario

log = logging.getLogger(__name__)
GASES = ("so2", "no2", "o3", "co")  # analysers that run a daily zero/span check


class StationClient:
    """One logger's connection to the platform."""

    def __init__(self, encoder: StationEncoder, host: str, port: int, *, ack_timeout_s: float = 10.0,
                 retries: int = 3, split_pause_s: float = 0.01,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.encoder = encoder
        self.host, self.port = host, port
        self.ack_timeout_s = ack_timeout_s
        self.retries = retries
        self.split_pause_s = split_pause_s
        self.clock = clock
        self.clock_offset = timedelta()
        self.stats: Counter[str] = Counter()
        self._pending: dict[str, asyncio.Future[None]] = {}
        self._lose: set[str] = set()
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._write_lock = asyncio.Lock()

    async def connect(self) -> None:
        """Open the link (the logger is the TCP client)."""
        reader, self._writer = await asyncio.open_connection(self.host, self.port)
        self._reader_task = asyncio.get_running_loop().create_task(self._read(reader))

    async def close(self) -> None:
        """Close the link."""
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self._writer.wait_closed()
        if self._reader_task is not None:
            self._reader_task.cancel()

    async def send(self, out: Outgoing) -> bool:
        """Send, wait for the answer, resend on timeout; ``True`` once answered (or no answer asked)."""
        if "lost_ack" in out.faults:
            self._lose.add(out.qn)
        for attempt in range(1 + self.retries):
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            if out.wants_ack:
                self._pending[out.qn] = future
            self.stats["resent" if attempt else "sent"] += 1
            try:
                await self._write(out.data, out.pieces)
                if not out.wants_ack:
                    return True
                await asyncio.wait_for(future, self.ack_timeout_s)
                self.stats["acked"] += 1
                return True
            except TimeoutError:
                continue
            finally:
                self._pending.pop(out.qn, None)
        self.stats["unacked"] += 1
        return False

    async def _write(self, data: bytes, pieces: int = 1) -> None:
        if self._writer is None:
            raise ConnectionError("not connected")
        async with self._write_lock:
            step = max(1, len(data) // pieces)
            cuts = [data[i:i + step] for i in range(0, len(data), step)] if pieces > 1 else [data]
            for n, chunk in enumerate(cuts):
                self._writer.write(chunk)
                await self._writer.drain()
                if n < len(cuts) - 1:
                    await asyncio.sleep(self.split_pause_s)  # separate TCP segments

    async def _read(self, reader: asyncio.StreamReader) -> None:
        framer = Framer()
        try:
            while data := await reader.read(65536):
                for event in framer.feed(data):
                    if isinstance(event, Frame):
                        packet = parse_segment(event.segment)
                        if isinstance(packet, Packet):
                            await self._on_packet(packet)
        except (ConnectionError, OSError):
            pass
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionError("link closed"))

    async def _on_packet(self, packet: Packet) -> None:
        if packet.cn in ("9014", "9013"):
            qn = packet.qn or ""
            if qn in self._lose:
                self._lose.discard(qn)  # this answer is "lost on the way"
                self.stats["acks_lost"] += 1
                return
            future = self._pending.get(qn)
            if future is not None and not future.done():
                future.set_result(None)
        elif packet.cn in ("1012", "1011"):
            self.stats[f"request_{packet.cn}"] += 1
            await self._write(build.request_response(packet, 1))
            if packet.cn == "1012":
                self.clock_offset = timedelta()  # the platform set the logger's clock
            else:
                now = self.clock()
                await self._write(self.encoder.time_upload(now, now + self.clock_offset).data)
            await self._write(build.execution_result(packet, 1))


@dataclass
class SimulatedStation:
    """A station to simulate: its encoder (config, password, version, key) and its faults."""

    encoder: StationEncoder
    faults: FaultPlan = field(default_factory=FaultPlan)


@dataclass
class _Running:
    station: SimulatedStation
    client: StationClient
    aggregator: Aggregator
    queue: asyncio.Queue[Outgoing | None] = field(default_factory=asyncio.Queue)
    last_heartbeat: datetime | None = None


async def run_stations(
    host: str, port: int, stations: Sequence[SimulatedStation], registry: Registry, *,
    scenario: Scenario | None = None, seed: int = 0, start: datetime | None = None,
    sim_duration_s: float = 3600.0, speed: float = 0.0, heartbeat_s: float = 300.0,
    ack_timeout_s: float = 10.0, stop: asyncio.Event | None = None,
) -> dict[str, Any]:
    """Play the stations' devices through HJ 212 for ``sim_duration_s``; returns per-station figures.

    ``speed`` is simulated seconds per real second (0 = as fast as the gateway answers). Real-time
    values come from the device simulators; minute and hourly means are computed from them.
    """
    devices = {s.encoder.station.device_id for s in stations}
    subset = Registry(sites=registry.sites, devices={k: v for k, v in registry.devices.items() if k in devices},
                      source=registry.source)
    missing = devices - set(subset.devices)
    if missing:
        raise ValueError(f"stations feed devices not in the registry: {', '.join(sorted(missing))}")
    generator = Generator(subset, scenario, seed, start, sim_duration_s, offline_at_end=False)
    running: dict[str, _Running] = {}
    for s in stations:
        client = StationClient(s.encoder, host, port, ack_timeout_s=ack_timeout_s)
        await client.connect()
        running[s.encoder.station.device_id] = _Running(s, client, Aggregator(s.encoder.station.minute_interval_min))
    workers = [asyncio.get_running_loop().create_task(_drain(r)) for r in running.values()]
    loop = asyncio.get_running_loop()
    began, first = loop.time(), generator.start
    try:
        for message in generator.messages():
            if stop is not None and stop.is_set():
                break
            if message.kind != "telemetry" or message.device_id not in running:
                continue
            if speed > 0:
                due = began + (message.sim_time - first).total_seconds() / speed
                await asyncio.sleep(max(0.0, due - loop.time()))
            _schedule(running[message.device_id], message.sim_time, json.loads(message.payload), heartbeat_s)
    finally:
        for r in running.values():
            r.queue.put_nowait(None)
        await asyncio.gather(*workers, return_exceptions=True)
        for r in running.values():
            await r.client.close()
    return {
        r.station.encoder.station.mn: {"device_id": r.station.encoder.station.device_id, **dict(r.client.stats),
                                       "faults": dict(r.station.faults.counts)}
        for r in running.values()
    }


def _schedule(r: _Running, moment: datetime, payload: dict[str, Any], heartbeat_s: float) -> None:
    """Queue the real-time packet of one simulated reading, the periods it closes and a due heartbeat."""
    values = {k: float(v) for k, v in payload.items() if k not in ("ts", "seq") and not isinstance(v, bool)}
    flags = {m: ("C" if m in GASES and calibrating(moment) else "N") for m in values}
    enc, plan = r.station.encoder, r.station.faults
    for out in enc.data("rtd", moment, values, flags, plan.draw()):
        r.queue.put_nowait(out)
    for kind, start, stats, period_flags in r.aggregator.add(moment, values, flags):
        for out in enc.data(kind, start, stats, period_flags, plan.draw(), sent_at=moment):
            r.queue.put_nowait(out)
    if r.last_heartbeat is None or (moment - r.last_heartbeat).total_seconds() >= heartbeat_s:
        r.last_heartbeat = moment
        r.queue.put_nowait(enc.heartbeat(moment))


async def _drain(r: _Running) -> None:
    """Send one station's packets in order, each after the previous one was answered or given up."""
    while (out := await r.queue.get()) is not None:
        try:
            await r.client.send(out)
        except (ConnectionError, OSError) as exc:
            # A logger reconnects and carries on; what could not be sent is counted, not retried forever.
            log.warning("station %s lost its link: %s", r.station.encoder.station.mn, exc)
            r.client.stats["link_lost"] += 1
            r.client.stats["not_sent"] += 1
            try:
                await r.client.close()
                await r.client.connect()
            except (ConnectionError, OSError):
                await asyncio.sleep(1.0)
