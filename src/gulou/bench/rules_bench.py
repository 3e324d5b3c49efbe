"""Rules benchmark: evaluations per second on synthetic readings, and publish → alert latency via a broker."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import random
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import aiomqtt

from gulou.devices.catalog import CATALOG
from gulou.devices.contract import Reading, telemetry_topic
from gulou.devices.registry import Device, Registry
from gulou.rules.model import AnyRule
from gulou.settings import Settings, parse_broker_url

# Plausible, calm values per device type (declared on the type); the latency run overrides bin temperature.
CALM: dict[str, dict[str, float | int | bool]] = {name: dict(t.calm) for name, t in CATALOG.items()}


def synthetic_values(device: Device, rng: random.Random) -> dict[str, float | int | bool]:
    """One calm reading for a device, with the type's relative noise on floats."""
    noise = CATALOG[device.type].calm_noise
    out: dict[str, float | int | bool] = {}
    for name, base in CALM[device.type].items():
        steady = isinstance(base, int) or noise == 0
        out[name] = base if steady else round(base * (1 + rng.uniform(-noise, noise)), 4)
    return out


def synthetic_readings(registry: Registry, readings: int, seed: int = 7) -> list[Reading]:
    """Calm readings from every device in turn, each device at its own interval (the same for a given seed)."""
    rng = random.Random(seed)
    devices = list(registry)
    start_ts = datetime(2026, 5, 1, tzinfo=UTC)
    items = []
    for i in range(readings):
        d = devices[i % len(devices)]
        ts = start_ts + timedelta(seconds=(i // len(devices)) * d.interval_s)
        items.append(Reading(device=d, ts=ts, seq=None, values=synthetic_values(d, rng)))
    return items


def bench_evaluations(registry: Registry, rules: Sequence[AnyRule], readings: int = 100_000,
                      seed: int = 7) -> dict[str, Any]:
    """Push synthetic readings through a fresh engine and time it (decoded readings, no I/O)."""
    from gulou.rules.engine import Engine

    engine = Engine(rules, registry)
    devices = list(registry)
    items = synthetic_readings(registry, readings, seed)
    t0 = time.perf_counter()
    for item in items:
        engine.process(item)
    elapsed = time.perf_counter() - t0
    return {"readings": readings, "devices": len(devices), "rules": len(rules), "seconds": round(elapsed, 3),
            "readings_per_s": round(readings / elapsed), "evaluations": engine.stats.evaluations,
            "evaluations_per_s": round(engine.stats.evaluations / elapsed),
            "alerts_fired": engine.stats.transitions}


def _publisher(host: str, port: int, devices: list[tuple[str, str]], rate: int, seconds: float,
               toggle_every: int) -> None:
    """Publish paced telemetry from its own process (so the engine has its own core)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"gulou-bench-rules-pub-{random.randrange(10**6)}")
    client.max_queued_messages_set(0)
    client.connect(host, port, 60)
    client.loop_start()
    rng = random.Random(1)
    total = int(rate * seconds)
    counts: dict[str, int] = {}
    t0 = time.perf_counter()
    for i in range(total):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        domain, device_id = devices[i % len(devices)]
        body: dict[str, Any] = {"ts": int(time.time() * 1000), "seq": i, "temperature": 20.0 + rng.random()}
        if domain == "waste":
            # Every bin turns hot and cool again every `toggle_every` of its readings: fire, then resolve.
            n = counts[device_id] = counts.get(device_id, 0) + 1
            if (n // toggle_every) % 2:
                body["temperature"] = 75.0
        client.publish(telemetry_topic(domain, device_id), json.dumps(body), qos=0)
    time.sleep(0.5)
    client.loop_stop()
    client.disconnect()


def _embedded_broker(ready: Any, port_box: Any, stop: Any) -> None:
    """Run the embedded broker in its own process."""
    from gulou.app.broker import EmbeddedBroker

    async def main() -> None:
        broker = EmbeddedBroker()
        address = await broker.start()
        port_box.value = address.port
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.2)
        await broker.stop()

    asyncio.run(main())


async def _measure(settings: Settings, registry: Registry, rules: Sequence[AnyRule], url: str, rate: int,
                   seconds: float, progress: Callable[[str], None]) -> dict[str, Any]:
    from gulou.channels.mqtt import ALERT_TOPIC_ROOT, MqttChannel
    from gulou.rules.service import MqttSource, RulesService

    broker = parse_broker_url(url)
    service = RulesService(settings, registry, rules, broker=broker, channels=[MqttChannel(settings, broker)],
                           channel_queue_size=100_000, renotify_s=None, tick_s=3600)
    source = MqttSource(settings, broker, service)
    latencies: list[float] = []
    ctx = multiprocessing.get_context("spawn")
    devices = [(d.domain, d.id) for d in registry if d.type in ("smart_bin", "air_station", "water_station")]

    async def collect() -> None:
        async with aiomqtt.Client(broker.host, broker.port, identifier="gulou-bench-rules-sub") as client:
            await client.subscribe(f"{ALERT_TOPIC_ROOT}/#", qos=1)
            async for message in client.messages:
                raw = message.payload
                data = json.loads(raw if isinstance(raw, bytes | bytearray | str) else str(raw))
                when = data["first_seen"] if data["event"] == "firing" else data["last_seen"]
                latencies.append(time.time() - datetime.fromisoformat(when).timestamp())

    async with asyncio.TaskGroup() as tg:
        run = tg.create_task(service.run(), name="bench-service")
        reader = tg.create_task(source.run(), name="bench-reader")
        sub = tg.create_task(collect(), name="bench-alert-subscriber")
        await asyncio.wait_for(source.connected.wait(), 10)
        while not service.channels_ready():
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        progress(f"publishing {rate} msg/s for {seconds:g} s to {url}")
        pub = ctx.Process(target=_publisher, args=(broker.host, broker.port, devices, rate, seconds, 100))
        pub.start()
        await asyncio.to_thread(pub.join)
        await asyncio.sleep(2.0)
        await service.drain(10)
        await asyncio.sleep(1.0)
        service.stop()
        await run
        reader.cancel()
        sub.cancel()
    ordered = sorted(latencies)

    def pct(p: float) -> float | None:
        return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000, 1) if ordered else None

    return {"broker": url, "rate_msg_s": rate, "seconds": seconds, "received": source.received,
            "rejected": source.rejected, "dropped": service.dropped, "alerts": len(ordered),
            "latency_p50_ms": pct(50), "latency_p99_ms": pct(99),
            "latency_mean_ms": round(statistics.fmean(ordered) * 1000, 1) if ordered else None,
            "p99_target_met": (pct(99) or 1e9) <= 1000}


def bench_latency(settings: Settings, registry: Registry, rules: Sequence[AnyRule], broker_url: str | None,
                  rate: int = 10_000, seconds: float = 10.0,
                  progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Publish → alert latency through a real broker (embedded amqtt in its own process by default)."""
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    proc = None
    try:
        if broker_url is None:
            ready, port = ctx.Event(), ctx.Value("i", 0)
            proc = ctx.Process(target=_embedded_broker, args=(ready, port, stop), daemon=True)
            proc.start()
            if not ready.wait(20):
                raise RuntimeError("embedded broker did not start")
            broker_url = f"mqtt://127.0.0.1:{port.value}"
        return asyncio.run(_measure(settings, registry, rules, broker_url, rate, seconds, progress))
    finally:
        stop.set()
        if proc is not None:
            proc.join(10)
