"""HJ 212 gateway benchmark: many concurrent station links sending 10-pollutant minute data.

The gateway runs in this process (one asyncio loop); the stations run in a second process so they do
not share its CPU. Each station opens its link, waits until all are open, then sends its minute packets
one after the other, each after the 9014 of the previous one (as loggers do). Figures: packets/s from
the first send to the last 9014, and the loss check: every packet sent was answered and handed
downstream exactly once. Downstream is in memory by default (the gateway's own ceiling) or a broker.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from gulou.hj212 import build
from gulou.hj212.convert import StationReading
from gulou.hj212.downstream import DeadLetter, Downstream
from gulou.hj212.gateway import Gateway
from gulou.hj212.mqtt import MqttDownstream
from gulou.hj212.server import Hj212Server, ServerLimits
from gulou.hj212.stations import StationBook, StationConfig
from gulou.settings import parse_broker_url

# Ten pollutants and weather items of an ambient station's minute record; the last two are not contract
# metrics (pressure, wind speed) and are left out by the code table, as with a real station.
_CODES = ("a34004", "a34002", "a21026", "a21004", "a05024", "a21005", "a01001", "a01002", "a01006", "a01007")
_VALUES = (35.2, 61.7, 6.1, 40.3, 52.9, 0.71, 17.6, 71.5, 101.3, 1.9)


@dataclass
class HjBenchResult:
    """What ``gulou bench hj212`` prints."""

    connections: int
    packets_per_connection: int
    packets: int
    downstream: str
    connect_s: float
    elapsed_s: float
    packets_per_s: float
    answered: int
    delivered: int
    rejected: int
    lost: int
    gateway_cpu_s: float  # CPU the gateway process used while the packets flowed
    packets_per_cpu_s: float  # the gateway's ceiling on a free core, whatever else the machine runs
    gateway_rss_mib: float  # peak RSS of the gateway's process
    rss_before_mib: float  # the same before the gateway started: what the process had loaded already
    accounting_balanced: bool


class _CountingDownstream(Downstream):
    """Counts what reaches it: the gateway's ceiling without a broker."""

    def __init__(self) -> None:
        self.readings = 0
        self.letters = 0

    async def deliver(self, readings: Sequence[StationReading]) -> None:
        self.readings += len(readings)

    async def reject(self, letter: DeadLetter) -> None:
        self.letters += 1


def bench_mn(i: int) -> str:
    """MN of the i-th benchmark station (24 hex characters, as the standard asks)."""
    return f"B{i:023X}"


def _book(connections: int) -> StationBook:
    stations = [StationConfig(mn=bench_mn(i), device_id=f"bench-aq-{i:05d}", device_type="air_station",
                              auth="none", minute_interval_min=1) for i in range(connections)]
    return StationBook(stations)


def minute_packets(i: int, count: int, start: datetime) -> list[bytes]:
    """``count`` consecutive minute packets (2051, Flag 5) of station ``i`` starting at ``start``."""
    out = []
    for n in range(count):
        moment = start + timedelta(minutes=n)
        items = {code: {"Min": f"{v * 0.9:.2f}", "Avg": f"{v:.2f}", "Max": f"{v * 1.1:.2f}", "Flag": "N"}
                 for code, v in zip(_CODES, _VALUES, strict=True)}
        cp = build.data_area(moment, items)
        out.append(build.frame(build.segment(qn=build.new_qn(moment + timedelta(milliseconds=i % 1000)), st="22",
                                             cn="2051", pw="123456", mn=bench_mn(i), flag=5, cp=cp)))
    return out


def _stations_main(port: int, connections: int, packets: int, start_iso: str, conn: Connection) -> None:
    """The load process: open every link, report, wait for the go, send and time."""
    asyncio.run(_stations(port, connections, packets, datetime.fromisoformat(start_iso), conn))


async def _stations(port: int, connections: int, packets: int, start: datetime, conn: Connection) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, connections + 1024)), hard))
    payloads = [minute_packets(i, packets, start) for i in range(connections)]
    began = time.perf_counter()
    links = []
    for i in range(connections):
        links.append(await asyncio.open_connection("127.0.0.1", port, limit=1 << 16))
        if i % 200 == 199:
            await asyncio.sleep(0)  # let the gateway accept in step
    conn.send(("connected", time.perf_counter() - began))
    conn.recv()  # go
    answered = 0

    async def station(i: int) -> None:
        nonlocal answered
        reader, writer = links[i]
        for packet in payloads[i]:
            writer.write(packet)
            reply = await reader.readuntil(b"\r\n")
            if b"CN=9014" in reply:
                answered += 1
        writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(station(i) for i in range(connections)), return_exceptions=True)
    conn.send(("done", time.perf_counter() - t0, answered))


def run_hj212_bench(connections: int = 2000, packets_per_connection: int = 10, broker: str | None = None,
                    progress: Callable[[str], None] | None = None, mosquitto: bool = False) -> HjBenchResult:
    """Run the benchmark; ``broker`` (``mqtt://host:port``) publishes readings there with QoS 1, and
    ``mosquitto`` starts a private Mosquitto for the run to publish to."""
    say = progress or (lambda _: None)
    if not mosquitto:
        return asyncio.run(_run(connections, packets_per_connection, broker, say))
    from gulou.bench.ingest_bench import _start_broker  # the ingest benchmark's private Mosquitto

    with tempfile.TemporaryDirectory(prefix="gulou-hj212-bench-") as workdir:
        proc, port = _start_broker(Path(workdir), connections * packets_per_connection)
        try:
            result = asyncio.run(_run(connections, packets_per_connection, f"mqtt://127.0.0.1:{port}", say))
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    result.downstream = "mqtt (private Mosquitto, QoS 1)"
    return result


async def _run(connections: int, packets: int, broker: str | None, say: Callable[[str], None]) -> HjBenchResult:
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, connections + 1024)), hard))
    counting = _CountingDownstream()
    downstream: Downstream = counting
    mqtt: MqttDownstream | None = None
    if broker:
        address = parse_broker_url(broker)
        mqtt = MqttDownstream(address.host, address.port, client_id="gulou-hj212-bench")
        await mqtt.start()
        downstream = mqtt
    # History data, an hour old: well inside the accepted clock skew whatever the run's length.
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
    gateway = Gateway(_book(connections), downstream)
    server = Hj212Server(gateway, ServerLimits(max_connections=connections + 10))
    _, port = await server.start("127.0.0.1", 0)
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    proc = ctx.Process(target=_stations_main, args=(port, connections, packets, start.isoformat(), theirs),
                       daemon=True)
    proc.start()
    loop = asyncio.get_running_loop()
    try:
        say(f"opening {connections} station links…")
        _, connect_s = await loop.run_in_executor(None, ours.recv)
        say(f"{connections} links open in {connect_s:.1f} s; sending {connections * packets} minute packets…")
        cpu0 = _cpu()
        ours.send("go")
        _, elapsed, answered = await loop.run_in_executor(None, ours.recv)
        cpu = _cpu() - cpu0
    finally:
        await loop.run_in_executor(None, proc.join, 30)
        await server.stop()
        if mqtt is not None:
            await mqtt.close()
    acc = gateway.accounting
    total = connections * packets
    delivered = acc.outcomes["delivered"]
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return HjBenchResult(
        connections=connections, packets_per_connection=packets, packets=total,
        downstream=f"mqtt {broker}" if broker else "memory", connect_s=round(connect_s, 2),
        elapsed_s=round(elapsed, 3), packets_per_s=round(answered / elapsed if elapsed else 0.0, 1),
        answered=answered, delivered=delivered, rejected=acc.outcomes["rejected"],
        lost=total - min(answered, delivered), gateway_cpu_s=round(cpu, 2),
        packets_per_cpu_s=round(answered / cpu if cpu else 0.0, 1), gateway_rss_mib=round(rss_mib, 1),
        rss_before_mib=round(rss_before, 1),
        accounting_balanced=acc.received == sum(acc.outcomes.values()),
    )


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def as_dict(result: HjBenchResult) -> dict[str, Any]:
    """JSON-ready figures."""
    return asdict(result)
