"""``gulou bench ingest``: sustained messages/s, latency, loss and memory of the ingest path.

Both phases use the same load generator (a separate process) against the same broker:
1. raw broker ceiling: a plain subscriber that only counts (``mosquitto_sub -C N``);
2. the pipeline: collector(s) storing durably and acking, measured from first publish to last stored.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gulou.app.ingest import IngestOptions, build_collector
from gulou.devices.catalog import CATALOG
from gulou.devices.contract import TELEMETRY_FILTER, Reading, StatusUpdate
from gulou.devices.registry import dump_registry, load_registry
from gulou.devices.synthetic import synthetic_registry
from gulou.settings import BrokerAddress, Settings
from gulou.sinks.embedded import EmbeddedStore

log = logging.getLogger(__name__)


@dataclass
class BenchConfig:
    """What to measure."""

    messages: int = 200_000
    devices: int = 1000
    qos: int = 1
    sink: str = "embedded"
    workers: int = 1
    batch_size: int = 1000
    rate: float = 0.0
    influx: dict[str, str] = field(default_factory=dict)


@dataclass
class BenchResult:
    """Figures printed by the benchmark."""

    messages: int
    devices: int
    qos: int
    sink: str
    workers: int
    broker_ceiling_msgs_per_s: float
    pipeline_msgs_per_s: float
    ratio_to_broker: float
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    stored: int
    rejected: int
    lost: int
    broker_dropped: int
    peak_rss_mb: float
    publisher_acked: int
    # CPU seconds the collector process(es) spent per message, in microseconds: the per-message cost itself,
    # which a machine shared with other work changes far less than the rates.
    collector_cpu_us_per_msg: float = 0.0


def _start_broker(workdir: Path, messages: int) -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        raise RuntimeError("the benchmark needs Mosquitto: apt-get install mosquitto")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    conf = workdir / "mosquitto.conf"
    # The default per-client queue (1000) overflows under a burst and drops silently: size it for the run.
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages {messages * 2}\n"
                    "max_inflight_messages 2000\nsys_interval 1\npersistence false\n")
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("mosquitto did not start")


def _loadgen(port: int, qos: int, count: int, devices_file: Path, client_id: str,
             rate: float = 0.0) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "gulou.bench.loadgen", "--port", str(port), "--qos", str(qos), "--count", str(count),
         "--devices", str(devices_file), "--client-id", client_id, "--rate", str(rate)],
        stdout=subprocess.PIPE,
    )


def _broker_dropped(port: int) -> int:
    """Read ``$SYS/broker/publish/messages/dropped`` (retained, refreshed every sys_interval)."""
    got: dict[str, int] = {}
    done = threading.Event()

    def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        got["dropped"] = int(msg.payload or b"0")
        done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="gulou-bench-sys")
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.subscribe("$SYS/broker/publish/messages/dropped")
    client.loop_start()
    done.wait(5)
    client.loop_stop()
    client.disconnect()
    return got.get("dropped", 0)


def _wait_subscribed(port: int, client_ids: list[str], timeout: float = 60.0) -> None:
    """Block until each collector's stall probe came back through the broker, so its subscriptions are in effect."""
    seen: set[str] = set()
    done = threading.Event()

    def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        seen.add(msg.topic.rsplit("/", 1)[-1])
        if seen >= set(client_ids):
            done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="gulou-bench-ready")
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.subscribe("gulou/_probe/+")
    client.loop_start()
    try:
        if not done.wait(timeout):
            raise RuntimeError(f"collectors not subscribed after {timeout:.0f} s: {sorted(set(client_ids) - seen)}")
    finally:
        client.disconnect()
        client.loop_stop()


def write_bench_devices(work: Path, config: BenchConfig) -> tuple[Path, Path]:
    """A synthetic registry file and the load generator's device list for ``config.devices`` devices."""
    sites, rows = synthetic_registry(max(config.devices, len(CATALOG)), seed=1)
    registry_file = work / "registry.yaml"
    registry_file.write_text(dump_registry(sites, rows), encoding="utf-8")
    registry = load_registry(registry_file)
    pairs = [(d.domain, d.id) for d in registry if d.type != "sorting_point"][: config.devices]
    devices_file = work / "devices.txt"
    devices_file.write_text("".join(f"{dom} {dev}\n" for dom, dev in pairs), encoding="utf-8")
    return registry_file, devices_file


def run_bench(config: BenchConfig, progress: Callable[[str], None] = print) -> BenchResult:
    """Run both phases and return the figures."""
    with tempfile.TemporaryDirectory(prefix="gulou-bench-") as tmp:
        work = Path(tmp)
        registry_file, devices_file = write_bench_devices(work, config)
        broker, port = _start_broker(work, config.messages)
        try:
            ceiling = _raw_ceiling(port, config, devices_file, progress)
            return _pipeline(port, config, registry_file, devices_file, work, ceiling, progress)
        finally:
            broker.terminate()
            broker.wait(10)


def _raw_ceiling(port: int, config: BenchConfig, devices_file: Path, progress: Callable[[str], None]) -> float:
    progress(f"phase 1: raw broker ceiling, {config.messages} messages at QoS {config.qos} to a counting subscriber")
    sub = subprocess.Popen(["mosquitto_sub", "-p", str(port), "-q", str(config.qos), "-t", TELEMETRY_FILTER,
                            "-C", str(config.messages), "-i", "gulou-bench-count"], stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    started = time.perf_counter()
    gen = _loadgen(port, config.qos, config.messages, devices_file, "gulou-bench-pub-1")
    sub.wait(timeout=600)
    elapsed = time.perf_counter() - started
    gen.wait(timeout=60)
    rate = config.messages / elapsed
    progress(f"  broker ceiling: {rate:,.0f} msg/s")
    return rate


def _pipeline(port: int, config: BenchConfig, registry_file: Path, devices_file: Path, work: Path,
              ceiling: float, progress: Callable[[str], None]) -> BenchResult:
    progress(f"phase 2: pipeline with the {config.sink} sink, {config.workers} collector process(es)")
    # Explicit: with --sink embedded, an InfluxDB configured in the environment must not be picked up.
    influx = {"influx_url": None, **config.influx}
    settings = Settings(broker=f"mqtt://127.0.0.1:{port}", store=work / "bench.db", registry=registry_file,
                        **influx)  # type: ignore[arg-type]
    latencies: list[float] = []
    procs: list[subprocess.Popen[bytes]] = []
    collector = None
    if config.workers == 1:
        def on_stored(items: list[Reading | StatusUpdate]) -> None:
            now = time.time()
            latencies.extend(now - i.ts.timestamp() for i in items)

        collector = build_collector(settings, load_registry(registry_file), BrokerAddress(host="127.0.0.1", port=port,
                                    tls=False), IngestOptions(client_id="gulou-bench-ingest", share_group="bench",
                                    batch_size=config.batch_size), on_stored=on_stored)
        collector.start()
        collector.source.wait_connected(10)
    else:
        env_args = ["--broker", f"mqtt://127.0.0.1:{port}", "--store", str(work / "bench.db"),
                    "--registry", str(registry_file), "--share-group", "bench", "--batch-size", str(config.batch_size),
                    "--log-level", "WARNING"]
        ids = [f"gulou-bench-ingest-{n}" for n in range(config.workers)]
        procs = [subprocess.Popen([sys.executable, "-m", "gulou", "ingest", *env_args, "--client-id", cid])
                 for cid in ids]
        # A shared subscription has no session: messages published before a worker subscribed are lost to it.
        _wait_subscribed(port, ids)
    store = EmbeddedStore.from_settings(settings)
    cpu_before = _cpu_seconds([p.pid for p in procs])
    started = time.perf_counter()
    gen = _loadgen(port, config.qos, config.messages, devices_file, "gulou-bench-pub-2", config.rate)
    done_at = started
    last_seen, last_change = -1, time.perf_counter()
    while True:
        # Only the totals: the full stats (per device, per domain) would cost the collector CPU it is measured on.
        t = store.totals()
        seen = t["stored"] + t["rejected"] + max(0, t["spooled"] - t["replayed"])
        now = time.perf_counter()
        if seen != last_seen:
            last_seen, last_change, done_at = seen, now, now
        if seen >= config.messages or now - last_change > 30:
            break
        time.sleep(0.2)
    out, _ = gen.communicate(timeout=120)
    published = json.loads(out or b"{}")
    elapsed = done_at - started
    if collector is not None:
        collector.stop()
    cpu = _cpu_seconds([p.pid for p in procs]) - cpu_before
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(30)
    if procs:
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    final = store.stats()
    store.close()
    handled = final["stored"] + final["rejected"] + final["spooled"]
    rate = handled / elapsed if elapsed > 0 else 0.0
    lat = sorted(latencies)
    p50 = round(statistics.median(lat) * 1000, 1) if lat else None
    p99 = round(lat[int(len(lat) * 0.99) - 1] * 1000, 1) if lat else None
    if procs:
        # Each worker samples its own end-to-end ages; the slowest worker's p99 is the honest overall p99.
        ages = [h["age_at_store_ms"] for h in final["collectors"].values() if h.get("age_at_store_ms")]
        if ages:
            p50 = float(statistics.median(a["p50"] for a in ages))
            p99 = float(max(a["p99"] for a in ages))
    result = BenchResult(
        messages=config.messages, devices=config.devices, qos=config.qos, sink=config.sink, workers=config.workers,
        broker_ceiling_msgs_per_s=round(ceiling), pipeline_msgs_per_s=round(rate),
        ratio_to_broker=round(rate / ceiling, 3) if ceiling else 0.0,
        latency_p50_ms=p50, latency_p99_ms=p99,
        stored=final["stored"], rejected=final["rejected"], lost=config.messages - handled,
        broker_dropped=_broker_dropped(port), peak_rss_mb=round(peak, 1),
        publisher_acked=int(published.get("acked", 0)),
        collector_cpu_us_per_msg=round(cpu / handled * 1e6, 1) if handled else 0.0,
    )
    progress(f"  pipeline: {rate:,.0f} msg/s, lost {result.lost}, peak RSS {result.peak_rss_mb} MB,"
             f" {result.collector_cpu_us_per_msg} µs CPU per message")
    return result


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of the given worker processes, or of this process when there are none."""
    if not pids:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        # Fields 14 and 15 of /proc/<pid>/stat, counted after the command name (which may hold spaces).
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def as_dict(result: BenchResult) -> dict[str, Any]:
    """Result as plain data for --json."""
    return asdict(result)
