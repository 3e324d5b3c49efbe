"""``gulou bench rules --bus``: ``gulou rules run --bus`` workers evaluating readings on a local 3-node JetStream.

By default the readings (the same synthetic ones as the in-memory evaluation run) are published to the
stream first, then N worker processes start, and the clock runs from their start until every partition's
``rules`` backlog (not yet delivered plus delivered but not acknowledged) is 0. ``live`` starts the workers
first, waits until they have shared out the partitions, and runs the clock from the first publish instead.
The workers are then stopped gracefully and the "evaluated N" each one logs is summed: every reading must
have been evaluated, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nats.errors

from gulou.bench.bus_bench import local_cluster
from gulou.bench.ingest_bench import _cpu_seconds, _start_broker
from gulou.bench.rules_bench import bench_evaluations, synthetic_readings
from gulou.bus.base import BusError, GroupStats, Topology
from gulou.bus.codec import envelope
from gulou.bus.jetstream import JetStreamBus
from gulou.bus.lease import parse_partition_key, preferred_owner, worker_key
from gulou.bus.partition import Partitioner
from gulou.bus.rules_worker import GROUP
from gulou.devices.registry import Registry
from gulou.rules.model import AnyRule
from gulou.tsdb.records import Point

# What a worker logs when it stops gracefully (gulou.app.bus.run_bus_rules).
_STOPPED = re.compile(r"rules worker (\S+) stopped: evaluated (\d+), sent (\d+), suppressed (\d+)")
_PROBLEM = re.compile(r" (?:WARNING|ERROR|CRITICAL) ")
_ALERT = "gulou.channels.log:"  # the log channel writes each alert as a warning: those are output, not trouble
PUBLISH_BATCH = 2000
POLL_S = 0.5


@dataclass
class WorkerFigures:
    """One worker process: what it logged on its graceful stop and the CPU it used while the clock ran."""

    worker: str
    evaluated: int
    sent: int
    cpu_s: float
    cpu_us_per_reading: float
    warnings: int
    exit_code: int  # after SIGTERM: 0 when it stopped gracefully, -9 when it had to be killed a minute later


@dataclass
class RulesBusResult:
    """Figures printed by ``gulou bench rules --bus`` (times in seconds from the start of the clock)."""

    mode: str
    readings: int
    devices: int
    rules: int
    workers: int
    partitions: int
    nats_nodes: int
    replicas: int
    in_memory_readings_per_s: int
    publish_readings_per_s: int
    startup_s: float
    delivered_s: float
    drained_s: float
    bus_readings_per_s: int
    delivered_readings_per_s: int
    ratio_to_in_memory: float
    published: int
    evaluated: int
    lost: int
    evaluated_twice: int
    backlog_left: int
    workers_exited: int
    alerts_sent: int
    per_worker: list[WorkerFigures] = field(default_factory=list)


@dataclass
class _Clock:
    """When readings were first delivered (some unacknowledged: commits come seconds apart), when nothing was
    left to deliver, when the backlog was 0."""

    first_s: float | None = None
    delivered_s: float | None = None
    drained_s: float | None = None
    left: int = 0


@dataclass
class _Run:
    """The processes and figures of one bus phase."""

    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    cpu_at_start: list[float] = field(default_factory=list)
    published: int = 0
    publish_s: float = 0.0
    startup_s: float = 0.0
    replicas: int = 0


def run_rules_bus_bench(registry: Registry, rules: Sequence[AnyRule], readings: int, workers: int, *,
                        live: bool = False, partitions: int = 16, nodes: int = 3, broker_url: str | None = None,
                        rule_files: Sequence[Path] = (), stall_s: float = 60.0,
                        progress: Callable[[str], None] = print) -> RulesBusResult:
    """In-memory evaluation rate, then the same readings through ``workers`` rules workers on the bus."""
    progress(f"in memory: {readings:,} readings through one engine ({len(rules)} rules)")
    memory = bench_evaluations(registry, rules, readings)
    progress(f"  {memory['readings_per_s']:,} readings/s")
    points = [Point.from_reading(r) for r in synthetic_readings(registry, readings)]
    with tempfile.TemporaryDirectory(prefix="gulou-bench-rules-bus-") as tmp:
        work = Path(tmp)
        broker = None
        if broker_url is None:
            broker, port = _start_broker(work, readings)
            broker_url = f"mqtt://127.0.0.1:{port}"
        try:
            with local_cluster(work, nodes) as urls:
                setup = _Setup(registry, points, urls, workers, broker_url, rule_files, work, stall_s, progress)
                return asyncio.run(setup.run(partitions, live, int(memory["readings_per_s"]), len(rules)))
        finally:
            if broker is not None:
                broker.terminate()
                broker.wait(10)


async def _open_bus(urls: list[str], partitions: int, timeout_s: float = 60.0) -> JetStreamBus:
    """The bus with an R<nodes> stream, once the fresh cluster has formed and can place it."""
    deadline = time.monotonic() + timeout_s
    for url in urls:  # listening first: connecting to a server still starting only logs refusals
        host, port = url.removeprefix("nats://").rsplit(":", 1)
        while not await _accepts(host, int(port)) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    while True:
        bus = JetStreamBus(urls, Topology(partitions), replicas=len(urls))
        try:
            await bus.start()
            return bus
        except (BusError, nats.errors.Error) as exc:
            # Until the routes are up and a meta leader is elected the stream cannot have all its replicas.
            await bus.close()
            if time.monotonic() >= deadline:
                raise RuntimeError(f"the local JetStream cluster did not form: {exc!r}") from exc
            await asyncio.sleep(0.5)


async def _accepts(host: str, port: int) -> bool:
    try:
        _reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    writer.close()
    return True


async def _balanced(bus: JetStreamBus, members: int) -> bool:
    """Whether ``members`` workers are alive and every partition is held by its preferred owner among them."""
    alive = set((await bus.leases.holders(worker_key(GROUP, ""))).values())
    held = {p: owner for name, owner in (await bus.leases.holders(f"{GROUP}.p")).items()
            if (p := parse_partition_key(GROUP, name)) is not None}
    return len(alive) == members and all(held.get(p) == preferred_owner(p, alive) for p in range(bus.partitions))


async def _backlog(bus: JetStreamBus) -> GroupStats | None:
    """The ``rules`` backlog from the consumers' info, or None unless every partition has a consumer listed.

    A loaded cluster may leave a consumer out of its listing, which would read as nothing left to do.
    """
    pending = unacked = offset = 0
    seen: set[int] = set()
    try:
        while True:
            page = await bus.js.consumers_info(bus.stream, offset=offset)
            for c in page:
                head, _, rest = c.name.partition("-p")
                if head == GROUP and rest.split("-", 1)[0].isdigit():
                    seen.add(int(rest.split("-", 1)[0]))
                    pending += c.num_pending or 0
                    unacked += c.num_ack_pending or 0
            offset += len(page)
            if len(page) < 256:
                break
    except (BusError, nats.errors.Error, TimeoutError):
        return None
    return GroupStats(pending, unacked) if len(seen) == bus.partitions else None


async def _stuck(bus: JetStreamBus) -> list[str]:
    """The ``rules`` consumers still holding readings, with what they hold (which partitions nobody read)."""
    with contextlib.suppress(BusError, nats.errors.Error):
        infos = await bus.js.consumers_info(bus.stream)
        return [f"{c.name} ({c.num_pending or 0} to deliver, {c.num_ack_pending or 0} to acknowledge)"
                for c in infos if c.name.startswith(f"{GROUP}-p") and (c.num_pending or c.num_ack_pending)]
    return []


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(30)


@dataclass
class _Setup:
    """One bus phase: the cluster, the readings, the workers to start and where their output goes."""

    registry: Registry
    points: list[Point]
    urls: list[str]
    workers: int
    broker_url: str
    rule_files: Sequence[Path]
    work: Path
    stall_s: float
    progress: Callable[[str], None]

    async def run(self, partitions: int, live: bool, memory_rate: int, rules: int) -> RulesBusResult:
        """Publish and evaluate (backlog first, or live), stop the workers, add up what they logged."""
        bus = await _open_bus(self.urls, partitions)
        run = _Run()
        try:
            run.replicas = (await bus.stats()).replicas
            self.progress(f"on the bus: {len(self.urls)}-node JetStream (R{run.replicas}), {bus.partitions} "
                          f"partitions, {self.workers} rules worker(s), alerts to {self.broker_url}")
            clock = await (self._live(bus, run) if live else self._backlog(bus, run))
            cpu = [_cpu_seconds([p.pid]) - c if p.poll() is None else 0.0
                   for p, c in zip(run.procs, run.cpu_at_start, strict=True)]
            # Those that exited on their own logged no "evaluated N": what they evaluated counts as lost.
            exited = sum(p.poll() is not None for p in run.procs)
        finally:
            _stop(run.procs)
            await bus.close()
        per_worker = self._workers(cpu, [p.returncode for p in run.procs])
        evaluated = sum(w.evaluated for w in per_worker)
        drained, delivered = clock.drained_s or 0.0, clock.delivered_s or 0.0
        rate = round(run.published / drained) if clock.drained_s else 0
        self.progress(f"  on the bus: {rate:,} readings/s to backlog 0 ({drained:.1f} s), evaluated {evaluated:,} "
                      f"of {run.published:,}")
        return RulesBusResult(
            mode="live" if live else "backlog", readings=len(self.points), devices=len(self.registry), rules=rules,
            workers=self.workers, partitions=bus.partitions, nats_nodes=len(self.urls), replicas=run.replicas,
            in_memory_readings_per_s=memory_rate,
            publish_readings_per_s=round(run.published / run.publish_s) if run.publish_s else 0,
            startup_s=round(run.startup_s, 2), delivered_s=round(delivered, 2), drained_s=round(drained, 2),
            bus_readings_per_s=rate, delivered_readings_per_s=round(run.published / delivered) if delivered else 0,
            ratio_to_in_memory=round(rate / memory_rate, 3) if memory_rate else 0.0,
            published=run.published, evaluated=evaluated, lost=max(0, run.published - evaluated),
            evaluated_twice=max(0, evaluated - run.published), backlog_left=clock.left, workers_exited=exited,
            alerts_sent=sum(w.sent for w in per_worker), per_worker=per_worker)

    async def _backlog(self, bus: JetStreamBus, run: _Run) -> _Clock:
        """Publish everything, then start the workers: the clock runs from their start."""
        self.progress(f"publishing the backlog of {len(self.points):,} readings")
        run.published, run.publish_s = await self._publish(bus)
        started = time.perf_counter()
        self._start_workers(run, bus.partitions)
        clock = await self._watch(bus, run, started, None)
        run.startup_s = clock.first_s or 0.0
        return clock

    async def _live(self, bus: JetStreamBus, run: _Run) -> _Clock:
        """Start the workers, wait until they share the partitions, then publish: the clock runs from then."""
        began = time.perf_counter()
        self._start_workers(run, bus.partitions)
        deadline = began + 120
        while not await _balanced(bus, self.workers):
            if time.perf_counter() > deadline or any(p.poll() is not None for p in run.procs):
                raise RuntimeError("the rules workers did not share out the partitions within 120 s")
            await asyncio.sleep(POLL_S)
        run.startup_s = time.perf_counter() - began
        self.progress(f"  partitions shared out after {run.startup_s:.1f} s; publishing {len(self.points):,} "
                      "readings")
        run.cpu_at_start = [_cpu_seconds([p.pid]) for p in run.procs]
        started = time.perf_counter()
        publishing = asyncio.create_task(self._publish(bus))
        clock = await self._watch(bus, run, started, publishing)
        run.published, run.publish_s = await publishing
        return clock

    async def _publish(self, bus: JetStreamBus) -> tuple[int, float]:
        parts = Partitioner(self.registry, bus.partitions)
        stored, total = 0, len(self.points)
        step = max(PUBLISH_BATCH, total // 5 // PUBLISH_BATCH * PUBLISH_BATCH)
        t0 = time.perf_counter()
        for start in range(0, total, PUBLISH_BATCH):
            batch = self.points[start:start + PUBLISH_BATCH]
            result = await bus.publish([envelope(p, parts.for_device(p.device_id)) for p in batch])
            # A publish retried after a lost PubAck comes back "duplicate": the stream holds that reading once.
            stored += result.stored + result.duplicates
            if (start + len(batch)) % step == 0 or start + len(batch) == total:
                self.progress(f"  published {start + len(batch):,} / {total:,}")
        return stored, time.perf_counter() - t0

    def _start_workers(self, run: _Run, partitions: int) -> None:
        # INFO: the graceful stop's "evaluated N" line is what the bench adds up.
        env = {**os.environ, "GULOU_LOG_LEVEL": "INFO", "GULOU_BUS__PARTITIONS": str(partitions)}
        rules = [arg for f in self.rule_files for arg in ("--rules", str(f))]
        for n in range(self.workers):
            # A log file, not a pipe: a worker whose pipe nobody reads stalls once the pipe is full.
            with (self.work / f"worker-{n}.log").open("wb") as log:
                run.procs.append(subprocess.Popen(
                    [sys.executable, "-m", "gulou", "rules", "run", "--bus", ",".join(self.urls), "--broker",
                     self.broker_url, "--store", str(self.work / f"alerts-{n}.db"), "--clock", "event", *rules],
                    env=env, stdout=log, stderr=subprocess.STDOUT))
        run.cpu_at_start = [0.0] * self.workers

    async def _watch(self, bus: JetStreamBus, run: _Run, started: float,
                     publishing: asyncio.Task[tuple[int, float]] | None) -> _Clock:
        """Poll the ``rules`` backlog until it is 0 (and publishing is over), every worker exited, or a stall."""
        clock = _Clock()
        last, last_change, last_report = (-1, -1), time.perf_counter(), 0.0
        while True:
            backlog = await _backlog(bus)  # None: a partition's consumer missing from the listing, no figure
            now = time.perf_counter()
            published = publishing is None or publishing.done()
            if backlog is not None:
                if publishing is None and clock.first_s is None and backlog.unacked > 0:
                    clock.first_s = now - started
                if published and clock.delivered_s is None and backlog.pending == 0:
                    clock.delivered_s = now - started
                clock.left = backlog.pending + backlog.unacked
                if published and clock.left == 0:
                    clock.drained_s = now - started
                    return clock
                if (backlog.pending, backlog.unacked) != last or not published:
                    last, last_change = (backlog.pending, backlog.unacked), now
                if now - last_report >= 2.0:
                    self.progress(f"  {now - started:5.1f} s: rules backlog {backlog.pending:,} to deliver, "
                                  f"{backlog.unacked:,} to acknowledge")
                    last_report = now
            # A worker that exits leaves its partitions to the others once its leases lapse: wait for them.
            gone = all(p.poll() is not None for p in run.procs)
            if gone or now - last_change > self.stall_s:
                self.progress(f"  stopped waiting: {'every worker exited' if gone else 'no progress'}; "
                              f"left in {', '.join(await _stuck(bus)) or 'no consumer'}")
                return clock
            await asyncio.sleep(POLL_S)

    def _workers(self, cpu: list[float], codes: list[int]) -> list[WorkerFigures]:
        figures: list[WorkerFigures] = []
        for n in range(self.workers):
            text = (self.work / f"worker-{n}.log").read_text(errors="replace")
            found = _STOPPED.search(text)
            if found is None:
                self.progress(f"  worker {n} logged no graceful stop (exit code {codes[n]}); its log ends:\n"
                              f"{text[-1500:]}")
            evaluated, sent = (int(found.group(2)), int(found.group(3))) if found else (0, 0)
            # Why a run lost or repeated work shows in the workers' warnings (reader timeouts, lost leases).
            warnings = [line for line in text.splitlines() if _PROBLEM.search(line) and _ALERT not in line]
            distinct = dict.fromkeys(re.sub(r"\d+", "N", _PROBLEM.split(w, 1)[-1])[:160] for w in warnings)
            for line in list(distinct)[:8]:
                self.progress(f"  worker {n} warned: {line}")
            figures.append(WorkerFigures(found.group(1) if found else f"#{n}", evaluated, sent, round(cpu[n], 2),
                                         round(cpu[n] / evaluated * 1e6, 1) if evaluated else 0.0, len(warnings),
                                         codes[n]))
        return figures


def as_dict(result: RulesBusResult) -> dict[str, Any]:
    """Result as plain data for --json."""
    return asdict(result)
