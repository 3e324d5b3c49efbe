"""The publisher: paces the generated stream in real time over a small pool of MQTT connections."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import zlib
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

import aiomqtt
from pydantic import BaseModel, ConfigDict, Field, InstanceOf, SecretStr

from gulou.backoff import Backoff
from gulou.devices.base import DOMAINS
from gulou.devices.registry import Registry
from gulou.settings import BrokerAddress
from gulou.simulators.generator import Generator
from gulou.simulators.model import FAULT_KINDS, REJECTED_FAULTS, FaultKind, SimMessage, rfc3339
from gulou.simulators.scenario import Scenario

log = logging.getLogger(__name__)
PUBLISH_TIMEOUT_S = 30.0
PROGRESS_EVERY_S = 0.25
WILL_ROOT = "gulou-sim"  # outside the gulou/ tree, so a collector never mistakes it for a device


def _not_pending_warning(record: logging.LogRecord) -> bool:
    # aiomqtt warns once per publish beyond ten in flight; a pooled lane keeps hundreds in flight on purpose.
    return "pending publish calls" not in str(record.msg)


_mqtt_log = logging.getLogger("gulou.simulators.mqtt")
_mqtt_log.addFilter(_not_pending_warning)


class SimulationError(RuntimeError):
    """The simulation could not run (e.g. the broker refused the first connection)."""


class SimConfig(BaseModel):
    """Everything one simulation run needs besides the broker address."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    # Checked as an instance: its devices are frozen dataclasses validated when the registry was loaded.
    registry: InstanceOf[Registry]
    scenario: Scenario = Field(default_factory=lambda: Scenario(name="quiet"))
    seed: int = 0
    start: datetime | None = None
    sim_duration: float | None = Field(default=None, ge=0, description="stop after this many simulated seconds")
    duration: float | None = Field(default=None, gt=0, description="stop after this many real seconds")
    speed: float = Field(default=1.0, ge=0, description="simulated seconds per real second; 0 = flat out")
    rate: float | None = Field(default=None, gt=0, description="at most this many messages per second")
    qos: Literal[0, 1, 2] = 1
    connections: int = Field(default=4, ge=1, le=64)
    inflight: int = Field(default=200, ge=1, le=10000)
    fault_rates: dict[FaultKind, float] = Field(default_factory=dict)
    username: str | None = None
    password: SecretStr | None = None
    ca_file: Path | None = None
    client_prefix: str = "gulou-sim"
    drain_timeout_s: float = Field(default=30.0, gt=0)
    offline_at_end: bool = Field(default=True, description="end with a retained offline for every device")


@dataclass(frozen=True)
class SimProgress:
    """A progress snapshot for the terminal display."""

    published: int
    generated: int
    msgs_per_s: float
    sim_time: datetime
    elapsed_s: float


class SimSummary(BaseModel):
    """What a run published; a collector's counts can be checked against it."""

    model_config = ConfigDict(extra="forbid")

    broker: str
    scenario: str
    seed: int
    devices: int
    start: str
    sim_time_reached: str
    sim_seconds: float
    real_seconds: float
    stopped: Literal["complete", "duration", "interrupted"]
    published: int
    telemetry: int
    status: int
    unsent: int
    msgs_per_s: float
    by_domain: dict[str, int]
    faults: dict[str, int]
    expected_rejections: int = Field(description="malformed + out_of_range + unknown_device: dead letters to expect")
    retained: dict[str, int] = Field(description="retained status messages published, by state")


@dataclass
class _Stats:
    sim_time: datetime | None = None  # of the last message handed to a lane
    generated: int = 0
    published: int = 0
    telemetry: int = 0
    status: int = 0
    by_domain: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    retained: Counter[str] = field(default_factory=Counter)

    def count(self, message: SimMessage) -> None:
        self.published += 1
        self.by_domain[message.domain] += 1
        if message.fault is not None:
            self.faults[message.fault] += 1
        if message.kind == "status":
            self.status += 1
            self.retained["offline" if b'"offline"' in message.payload else "online"] += 1
        else:
            self.telemetry += 1


class _Lane:
    """One pooled MQTT connection publishing the messages of the devices hashed to it, in order."""

    def __init__(self, client_id: str, make_client: Callable[[str], aiomqtt.Client], inflight: int,
                 stats: _Stats) -> None:
        self.client_id = client_id
        self.make_client = make_client
        self.stats = stats
        self.queue: asyncio.Queue[SimMessage | None] = asyncio.Queue(maxsize=2 * inflight)
        self.retry: deque[SimMessage] = deque()
        self.slots = asyncio.Semaphore(inflight)
        self.pending: set[asyncio.Task[None]] = set()
        self.finishing = False
        self.broken = False
        self.connected_once = False
        self.connected = asyncio.Event()

    async def run(self) -> None:
        """Connect, publish until the end sentinel, and reconnect with jittered backoff on a drop."""
        backoff = Backoff(0.5, 30.0)  # jittered: pooled lanes do not reconnect in step
        while True:
            try:
                async with self.make_client(self.client_id) as client:
                    self.connected_once = True
                    self.connected.set()
                    self.broken = False
                    backoff.reset()
                    await self._drain(client)
                    return
            except aiomqtt.MqttError as exc:
                if not self.connected_once:
                    raise SimulationError(f"cannot connect to the broker: {exc}") from exc
                log.warning("connection %s lost (%s); reconnecting in about %.1f s", self.client_id, exc,
                            backoff.delay)
            await backoff.sleep()

    async def _drain(self, client: aiomqtt.Client) -> None:
        while True:
            if self.retry:
                message: SimMessage | None = self.retry.popleft()
            elif self.finishing:
                if self.pending:
                    await asyncio.gather(*self.pending)
                if self.retry:
                    raise aiomqtt.MqttError("some publishes were not acknowledged")
                return
            else:
                message = await self.queue.get()
            if message is None:
                self.finishing = True
                continue
            if self.broken:
                self.retry.appendleft(message)
                raise aiomqtt.MqttError("publish failed")
            await self.slots.acquire()
            # Tasks start in creation order, so the client sends a lane's messages in stream order.
            task = asyncio.create_task(self._publish(client, message))
            self.pending.add(task)
            task.add_done_callback(self.pending.discard)

    async def _publish(self, client: aiomqtt.Client, message: SimMessage) -> None:
        try:
            await client.publish(message.topic, message.payload, qos=message.qos, retain=message.retain,
                                 timeout=PUBLISH_TIMEOUT_S)
            self.stats.count(message)
        except aiomqtt.MqttError:
            self.broken = True
            self.retry.append(message)
        finally:
            self.slots.release()


def _client_factory(config: SimConfig, broker: BrokerAddress) -> Callable[[str], aiomqtt.Client]:
    tls = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None) if broker.tls else None

    def make(client_id: str) -> aiomqtt.Client:
        # A real device's last will is its own status topic; a pooled connection speaks for many devices,
        # so its will goes to a simulator topic and the simulator publishes device statuses itself.
        will = aiomqtt.Will(topic=f"{WILL_ROOT}/{client_id}/status", payload=b'{"state":"offline"}', qos=1)
        return aiomqtt.Client(
            broker.host, broker.port, identifier=client_id, username=config.username,
            password=config.password.get_secret_value() if config.password else None, will=will,
            tls_context=tls, logger=_mqtt_log, keepalive=30, timeout=10, max_inflight_messages=config.inflight,
        )

    return make


def lane_of(message: SimMessage, lanes: int) -> int:
    """A stable lane per device, so each device's messages keep their order on one connection."""
    return zlib.crc32(message.device_id.encode()) % lanes


async def run_simulation(
    config: SimConfig,
    broker: BrokerAddress,
    progress: Callable[[SimProgress], None] | None = None,
    stop: asyncio.Event | None = None,
    consumed: Callable[[], int] | None = None,
    max_backlog: int = 500,
) -> SimSummary:
    """Publish the generated stream paced by ``speed``/``rate`` until it ends, ``duration`` passes or ``stop``.

    ``consumed``, when given, says how many messages the consumer (the demo's collector) has taken: the feed
    waits while more than ``max_backlog`` are on their way, so a broker that cannot keep up is never flooded.
    """
    stop = stop or asyncio.Event()
    rates: dict[str, float] = {str(k): v for k, v in config.fault_rates.items()}
    gen = Generator(config.registry, config.scenario, config.seed, config.start, config.sim_duration, None,
                    rates, config.qos, config.offline_at_end)
    stats = _Stats()
    make = _client_factory(config, broker)
    run_id = f"{random.getrandbits(24):06x}"
    lanes = [_Lane(f"{config.client_prefix}-{run_id}-{i}", make, config.inflight, stats)
             for i in range(config.connections)]
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    finished = asyncio.Event()
    outcome: list[Literal["complete", "duration", "interrupted"]] = []

    def snapshot() -> SimProgress:
        elapsed = loop.time() - t0
        return SimProgress(stats.published, stats.generated, stats.published / elapsed if elapsed > 0 else 0.0,
                           stats.sim_time or gen.start, elapsed)

    async def report() -> None:
        while not finished.is_set():
            if progress is not None:
                progress(snapshot())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(finished.wait(), PROGRESS_EVERY_S)

    async def feed() -> None:
        try:
            try:
                async with asyncio.timeout(20):
                    for lane in lanes:
                        await lane.connected.wait()
            except TimeoutError:
                raise SimulationError(f"broker {broker.host}:{broker.port} accepted no connection in 20 s") from None
            outcome.append(await _pace(gen.messages(), lanes, config, gen.start, stats, stop, loop, t0,
                                       _Backlog(consumed, max_backlog) if consumed is not None else None))
            if outcome[0] != "complete":
                for message in gen.closing(stats.sim_time or gen.start):
                    await lanes[lane_of(message, len(lanes))].queue.put(message)
                    stats.generated += 1
            for lane in lanes:
                await lane.queue.put(None)
            await _wait_lanes(lane_tasks, config.drain_timeout_s)
        finally:
            finished.set()

    try:
        async with asyncio.TaskGroup() as group:
            lane_tasks = [group.create_task(lane.run(), name=f"sim-lane-{i}") for i, lane in enumerate(lanes)]
            group.create_task(feed(), name="sim-feed")
            group.create_task(report(), name="sim-progress")
    except* SimulationError as errors:
        where = f"{'mqtts' if broker.tls else 'mqtt'}://{broker.host}:{broker.port}"
        raise SimulationError(f"{where}: {errors.exceptions[0]}") from None
    if progress is not None:
        progress(snapshot())
    return _summary(config, broker, gen, stats, lanes, outcome[0] if outcome else "interrupted",
                    loop.time() - t0)


@dataclass
class _Backlog:
    """Back-pressure from the consumer: how many messages it has taken, and how many may be ahead of it."""

    consumed: Callable[[], int]
    limit: int
    waited_s: float = 0.0

    async def wait(self, generated: int, stop: asyncio.Event, loop: asyncio.AbstractEventLoop) -> None:
        """Return once at most ``limit`` generated messages are still on their way to the consumer."""
        if generated - self.consumed() <= self.limit:
            return
        began = loop.time()
        while generated - self.consumed() > self.limit // 2 and not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.02)
        self.waited_s += loop.time() - began


async def _pace(messages: Iterator[SimMessage], lanes: list[_Lane], config: SimConfig, start: datetime,
                stats: _Stats, stop: asyncio.Event, loop: asyncio.AbstractEventLoop,
                t0: float, backlog: _Backlog | None = None) -> Literal["complete", "duration", "interrupted"]:
    """Hand messages to the lanes at their real-time due moments; say why the feed ended."""
    deadline = t0 + config.duration if config.duration is not None else None
    next_slot = t0
    for n, message in enumerate(messages):
        if backlog is not None:
            await backlog.wait(stats.generated, stop, loop)
            t0 += backlog.waited_s  # time spent waiting for the consumer shifts the schedule, not the pace
            backlog.waited_s = 0.0
        due = loop.time()
        if config.speed > 0:
            due = t0 + (message.sim_time - start).total_seconds() / config.speed
        if config.rate is not None:
            due = max(due, next_slot)
            next_slot = due + 1 / config.rate
        wake = due if deadline is None else min(due, deadline)
        if wake > loop.time():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wake - loop.time())
        elif n % 256 == 0:
            await asyncio.sleep(0)  # flat out: still let the lanes and the progress display run
        if stop.is_set():
            return "interrupted"
        if deadline is not None and loop.time() >= deadline:
            return "duration"
        await lanes[lane_of(message, len(lanes))].queue.put(message)
        stats.generated += 1
        stats.sim_time = message.sim_time
    return "complete"


async def _wait_lanes(tasks: list[asyncio.Task[None]], timeout: float) -> None:
    """Let the lanes finish their acknowledgements; give up after ``timeout`` (e.g. the broker is gone)."""
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        log.warning("%s did not finish within %.0f s; giving up on its unacknowledged messages",
                    task.get_name(), timeout)
        task.cancel()


def _summary(config: SimConfig, broker: BrokerAddress, gen: Generator, stats: _Stats, lanes: list[_Lane],
             stopped: Literal["complete", "duration", "interrupted"], real_s: float) -> SimSummary:
    faults = {kind: stats.faults.get(kind, 0) for kind in FAULT_KINDS}
    return SimSummary(
        broker=f"{'mqtts' if broker.tls else 'mqtt'}://{broker.host}:{broker.port}",
        scenario=config.scenario.name, seed=config.seed, devices=len(config.registry),
        start=rfc3339(gen.start), sim_time_reached=rfc3339(gen.sim_time),
        sim_seconds=(gen.sim_time - gen.start).total_seconds(), real_seconds=round(real_s, 3), stopped=stopped,
        published=stats.published, telemetry=stats.telemetry, status=stats.status,
        unsent=max(0, stats.generated - stats.published),
        msgs_per_s=round(stats.published / real_s, 1) if real_s > 0 else 0.0,
        by_domain={d: stats.by_domain.get(d, 0) for d in DOMAINS}, faults=faults,
        expected_rejections=sum(faults[k] for k in REJECTED_FAULTS),
        retained={"online": stats.retained.get("online", 0), "offline": stats.retained.get("offline", 0)},
    )
