"""``gulou bench ingest --bus``: MQTT publish → collectors → JetStream (R3) → sinks → store, against the
Mosquitto-only path (collectors storing directly) in the same run, on the same broker and load generator.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gulou.bench.ingest_bench import (
    BenchConfig,
    _loadgen,
    _pipeline,
    _raw_ceiling,
    _start_broker,
    _wait_subscribed,
    write_bench_devices,
)
from gulou.sinks.embedded import EmbeddedStore


@dataclass
class BusBenchResult:
    """Figures printed by the bus benchmark."""

    messages: int
    qos: int
    collectors: int
    sinks: int
    nats_nodes: int
    broker_ceiling_msgs_per_s: float
    mosquitto_only_msgs_per_s: float
    bus_msgs_per_s: float
    ratio_to_mosquitto_only: float
    stored: int
    rejected: int
    lost: int
    publisher_acked: int


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def local_cluster(workdir: Path, size: int = 3) -> Iterator[list[str]]:
    """A JetStream cluster of ``size`` nats-server processes on loopback; yields the client URLs."""
    binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
    if not Path(binary).exists():
        raise RuntimeError("the bus benchmark needs nats-server: apt-get install nats-server")
    ports = [(_free_port(), _free_port()) for _ in range(size)]
    routes = ", ".join(f'"nats-route://127.0.0.1:{c}"' for _p, c in ports)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for n, (port, cport) in enumerate(ports):
            conf = workdir / f"nats-{n}.conf"
            conf.write_text(f"server_name: n{n}\nlisten: 127.0.0.1:{port}\n"
                            f'jetstream {{ store_dir: "{workdir / f"nats-{n}"}" }}\n'
                            + (f"cluster {{ name: bench, listen: 127.0.0.1:{cport}, routes: [{routes}] }}\n"
                               if size > 1 else ""))
            procs.append(subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
        yield [f"nats://127.0.0.1:{p}" for p, _c in ports]
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(20)


def run_bus_bench(config: BenchConfig, collectors: int = 2, sinks: int = 2, nodes: int = 3,
                  progress: Callable[[str], None] = print) -> BusBenchResult:
    """Raw broker ceiling, the Mosquitto-only pipeline, then the pipeline on a local JetStream cluster."""
    with tempfile.TemporaryDirectory(prefix="gulou-bench-bus-") as tmp:
        work = Path(tmp)
        registry_file, devices_file = write_bench_devices(work, config)
        broker, port = _start_broker(work, config.messages)
        try:
            ceiling = _raw_ceiling(port, config, devices_file, progress)
            plain = _pipeline(port, config, registry_file, devices_file, work, ceiling, progress)
            with local_cluster(work, nodes) as urls:
                return _bus_phase(port, config, registry_file, devices_file, work, urls, collectors, sinks,
                                  ceiling, plain.pipeline_msgs_per_s, progress)
        finally:
            broker.terminate()
            broker.wait(10)


def _bus_phase(port: int, config: BenchConfig, registry_file: Path, devices_file: Path, work: Path, urls: list[str],
               collectors: int, sinks: int, ceiling: float, plain_rate: float,
               progress: Callable[[str], None]) -> BusBenchResult:
    progress(f"phase 3: on the bus: {collectors} collector(s) -> {len(urls)}-node JetStream -> {sinks} sink(s)")
    bus_url = ",".join(urls)
    store_path = work / "bus.db"
    common = ["--log-level", "WARNING"]
    procs = [subprocess.Popen([sys.executable, "-m", "gulou", "sink", "--bus", bus_url, "--store", str(store_path),
                               "--batch-size", str(config.batch_size), *common]) for _ in range(sinks)]
    ids = [f"gulou-bench-bus-{n}" for n in range(collectors)]
    procs += [subprocess.Popen([sys.executable, "-m", "gulou", "ingest", "--broker", f"mqtt://127.0.0.1:{port}",
                                "--bus", bus_url, "--registry", str(registry_file), "--share-group", "benchbus",
                                "--client-id", cid, "--batch-size", str(config.batch_size),
                                "--store", str(work / f"{cid}.db"), *common]) for cid in ids]
    try:
        _wait_subscribed(port, ids, timeout=120)
        store = EmbeddedStore(store_path)
        started = time.perf_counter()
        gen = _loadgen(port, config.qos, config.messages, devices_file, "gulou-bench-pub-3", config.rate)
        done_at, last_seen, last_change = started, -1, started
        while True:
            t = store.totals()
            seen = t["stored"] + t["rejected"]
            now = time.perf_counter()
            if seen != last_seen:
                last_seen, last_change, done_at = seen, now, now
            if seen >= config.messages or now - last_change > 30:
                break
            time.sleep(0.2)
        out, _ = gen.communicate(timeout=120)
        final = store.totals()
        store.close()
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(60)
    published = json.loads(out or b"{}")
    handled = final["stored"] + final["rejected"]
    elapsed = done_at - started
    rate = handled / elapsed if elapsed > 0 else 0.0
    progress(f"  on the bus: {rate:,.0f} msg/s, lost {config.messages - handled}")
    return BusBenchResult(
        messages=config.messages, qos=config.qos, collectors=collectors, sinks=sinks, nats_nodes=len(urls),
        broker_ceiling_msgs_per_s=round(ceiling), mosquitto_only_msgs_per_s=round(plain_rate),
        bus_msgs_per_s=round(rate), ratio_to_mosquitto_only=round(rate / plain_rate, 3) if plain_rate else 0.0,
        stored=final["stored"], rejected=final["rejected"], lost=config.messages - handled,
        publisher_acked=int(published.get("acked", 0)))


def as_dict(result: BusBenchResult) -> dict[str, Any]:
    """Result as plain data for --json."""
    return asdict(result)
