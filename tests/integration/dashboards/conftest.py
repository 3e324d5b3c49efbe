"""A real InfluxQL engine (Debian's influxd 1.x) loaded with simulated Gulou data through the project's own
line-protocol output, for executing every dashboard query."""

from __future__ import annotations

import inspect
import itertools
import json
import random
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gulou.devices.catalog import CATALOG
from gulou.devices.contract import Decoder, Reading, StatusUpdate, status_topic, telemetry_topic
from gulou.devices.registry import Registry
from gulou.reports.model import DayAqi
from gulou.reports.series import district_lines
from gulou.rules.derived import aqi_line
from gulou.rules.engine import Engine
from gulou.rules.standards import aqi, china_date
from gulou.rules.standards.aqi import MEASURED
from gulou.timeutil import from_ms
from gulou.tsdb.line_protocol import encode_line, line_protocol
from gulou.tsdb.records import Batch, Point, StatusEvent
from tests.servers import free_port, require_binary, wait_for_port

DATABASE = "gulou"
HOURS = 26
STEP = timedelta(minutes=30)
MAX_MESSAGES = 400_000  # keeps the load under a few seconds


@dataclass
class Influx:
    """A running influxd with the test data loaded; ``start_ms``/``end_ms`` bound the data."""

    url: str
    start_ms: int = 0
    end_ms: int = 0
    source: str = ""

    def query(self, q: str) -> dict[str, Any]:
        """Run InfluxQL; raise on an error in the response."""
        params = urllib.parse.urlencode({"db": DATABASE, "q": q, "epoch": "ms"})
        with urllib.request.urlopen(f"{self.url}/query?{params}", timeout=30) as resp:
            body: dict[str, Any] = json.loads(resp.read())
        for result in body.get("results", []):
            if "error" in result:
                raise AssertionError(f"InfluxQL error {result['error']!r} for: {q}")
        return body

    def write(self, lines: list[str]) -> None:
        """POST line protocol (ms precision) in chunks."""
        for i in range(0, len(lines), 5000):
            data = "\n".join(lines[i:i + 5000]).encode()
            req = urllib.request.Request(f"{self.url}/write?db={DATABASE}&precision=ms", data=data, method="POST")
            with urllib.request.urlopen(req, timeout=30) as resp:
                assert resp.status == 204, resp.read()


def _config(workdir: Path, http_port: int, rpc_port: int) -> Path:
    conf = workdir / "influxdb.conf"
    conf.write_text(
        "reporting-disabled = true\n"
        f'bind-address = "127.0.0.1:{rpc_port}"\n'
        f'[meta]\n  dir = "{workdir}/meta"\n'
        f'[data]\n  dir = "{workdir}/data"\n  wal-dir = "{workdir}/wal"\n  query-log-enabled = false\n'
        "[monitor]\n  store-enabled = false\n"
        f'[http]\n  bind-address = "127.0.0.1:{http_port}"\n  log-enabled = false\n'
        "[continuous_queries]\n  enabled = false\n"
        '[logging]\n  level = "warn"\n'
    )
    return conf


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Influx]:
    """influxd 1.x on free loopback ports with a fresh ``gulou`` database."""
    binary = require_binary("influxd", "influxdb")
    workdir = tmp_path_factory.mktemp("influxd")
    http_port, rpc_port = free_port(), free_port()
    log = (workdir / "influxd.log").open("wb")
    proc = subprocess.Popen([binary, "-config", str(_config(workdir, http_port, rpc_port))],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(http_port, timeout=30, proc=proc)
        server = Influx(f"http://127.0.0.1:{http_port}")
        deadline = time.monotonic() + 30
        while True:  # the port opens a moment before the meta store accepts statements
            try:
                server.query(f"CREATE DATABASE {DATABASE}")
                break
            except (OSError, AssertionError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _simulator_messages(registry: Registry, start: datetime, end: datetime) -> list[tuple[str, bytes]] | None:
    """Messages from gulou.simulators.generate when it is there (parameters matched by name)."""
    try:
        from gulou.simulators import generate
    except ImportError:
        return None
    params = inspect.signature(generate).parameters
    offered: dict[str, Any] = {"registry": registry, "start": start, "end": end, "until": end,
                               "hours": HOURS, "duration": end - start, "seed": 7}
    kwargs = {k: v for k, v in offered.items() if k in params}
    out: list[tuple[str, bytes]] = []
    try:
        messages = itertools.islice(generate(**kwargs), MAX_MESSAGES)
    except TypeError:  # a signature this loader does not know: use the catalog-driven messages
        return None
    for message in messages:
        topic = getattr(message, "topic", None) if not isinstance(message, tuple) else message[0]
        payload = getattr(message, "payload", None) if not isinstance(message, tuple) else message[1]
        if isinstance(payload, str):
            payload = payload.encode()
        if isinstance(topic, str) and isinstance(payload, bytes):
            out.append((topic, payload))
    return out or None


def _value(rng: random.Random, device_type: str, metric: str, hour_frac: float) -> float | int | bool:
    m = CATALOG[device_type].metric(metric)
    if m.kind == "bool":
        return rng.random() < 0.05
    low = m.minimum if m.minimum is not None else 0.0
    high = m.maximum if m.maximum is not None else 100.0
    typical = {"pm25": (10, 90), "pm10": (20, 160), "so2": (3, 30), "no2": (10, 90), "o3": (20, 180),
               "co": (0.2, 1.5), "do": (1.5, 8), "nh3n": (0.2, 2.5), "codmn": (2, 12), "tp": (0.05, 0.45),
               "transparency": (15, 80), "orp": (-100, 200), "ph": (6.5, 8.5), "fill_level": (0.05, 0.99),
               "tilt_x": (-0.6, 0.6), "tilt_y": (-0.6, 0.6), "crack_width": (0.1, 1.2), "settlement": (-5, 5),
               "vibration": (0.2, 4.0)}.get(metric, (low, high))
    value = typical[0] + (typical[1] - typical[0]) * (0.5 + 0.5 * rng.random() * hour_frac)
    return int(value) if m.kind == "int" else round(float(value), 3)


def _fallback_messages(registry: Registry, start: datetime, end: datetime) -> list[tuple[str, bytes]]:
    """Catalog-driven messages (every metric of every device each step) when no simulator is installed."""
    rng = random.Random(7)
    out: list[tuple[str, bytes]] = []
    for device in registry:
        out.append((status_topic(device.domain, device.id), json.dumps(
            {"ts": start.isoformat(), "state": "online" if rng.random() > 0.1 else "offline",
             "battery": 80.0, "rssi": -70.0}).encode()))
        t = start
        step = 0
        while t < end:
            frac = (step % 48) / 48
            payload: dict[str, Any] = {"ts": t.isoformat(), "seq": step}
            for m in CATALOG[device.type].metrics:
                payload[m.name] = _value(rng, device.type, m.name, frac)
            if device.type == "parking_lot":
                total = device.site.capacity or 100
                payload["total_spots"] = total
                payload["occupied_spots"] = min(total, int(total * (0.3 + frac * 0.6)))
            if device.type == "sorting_point":
                payload["inspected"] = 40
                payload["correct"] = 36 + rng.randint(0, 4)
            out.append((telemetry_topic(device.domain, device.id), json.dumps(payload).encode()))
            t += STEP
            step += 1
    return out


def _edge_messages(registry: Registry, end: datetime) -> list[tuple[str, bytes]]:
    """A few readings that make threshold panels non-empty: a bin to dispatch, an overflow, a filling lot."""
    out: list[tuple[str, bytes]] = []
    bins = [d for d in registry if d.type == "smart_bin"][:2]
    for index, dev in enumerate(bins):
        ts = (end - timedelta(minutes=20 - index)).isoformat()
        out.append((telemetry_topic(dev.domain, dev.id), json.dumps({"ts": ts, "fill_level": 0.97}).encode()))
    lot = next(d for d in registry if d.type == "parking_lot")
    total = lot.site.capacity or 100
    for minutes, share in ((100, 0.5), (70, 0.6), (40, 0.7), (10, 0.8)):
        ts = (end - timedelta(minutes=minutes)).isoformat()
        out.append((telemetry_topic(lot.domain, lot.id), json.dumps(
            {"ts": ts, "total_spots": total, "occupied_spots": int(total * share)}).encode()))
    return out


def _decode_all(registry: Registry, messages: Iterable[tuple[str, bytes]], now: datetime) -> Batch:
    decoder = Decoder(registry)
    batch = Batch()
    for topic, payload in messages:
        result = decoder.decode(topic, payload, now)
        if isinstance(result, Reading):
            batch.points.append(Point.from_reading(result))
        elif isinstance(result, StatusUpdate):
            batch.statuses.append(StatusEvent.from_update(result))
    return batch


def _ops_lines(registry: Registry, start_ms: int, end_ms: int) -> list[str]:
    """pipeline_health, completeness and alerts rows as the collector and the rules engine write them."""
    lines: list[str] = []
    hour = 3_600_000
    for i, ts in enumerate(range(start_ms, end_ms, 600_000)):
        for collector in ("ingest-1", "ingest-2"):
            lines.append(encode_line("pipeline_health", {"collector": collector}, {
                "received": 1000 * i, "stored": 990 * i, "rejected": 10 * i, "spooled": i // 10,
                "spool_bytes": 0 if i % 7 else 2048, "reconnects": i // 50, "deadletters": 10 * i,
                "msgs_per_s": 1.5 + (i % 5) * 0.1}, ts))
    for device in list(registry)[:40]:
        for ts in range(start_ms - start_ms % hour, end_ms, hour):
            lines.append(encode_line("completeness", {"device": device.id, "domain": device.domain,
                                                      "street": device.street},
                                     {"expected": 60, "received": 58, "stored": 57, "rejected": 1,
                                      "ratio": 57 / 60}, ts))
    picks = [next(d for d in registry if d.domain == dom) for dom in ("air", "water", "structure", "waste")]
    picks.append([d for d in registry if d.domain == "structure"][1])
    for index, device in enumerate(picks):
        tags = {"rule_id": f"{device.domain}-limit", "domain": device.domain, "street": device.street,
                "site": device.site.id, "device": device.id}
        severity = ("medium", "high", "critical", "low", "high")[index]
        fired = end_ms - (5 - index) * hour
        fields: dict[str, Any] = {"value": 1.3, "limit": 1.0, "exceedance": 0.3, "standard": "GB",
                                  "message": f"{device.name} 超标 0.3 倍", "message_en": "above limit"}
        lines.append(encode_line("alerts", {**tags, "severity": severity, "state": "firing"}, fields, fired))
        if index == 0:  # one pair resolved, so "active" logic is exercised
            lines.append(encode_line("alerts", {**tags, "severity": severity, "state": "resolved"},
                                     {**fields, "value": 0.8, "exceedance": 0.0, "message": "已恢复"}, fired + hour))
    return lines


def _aqi_lines(registry: Registry, points: list[Point]) -> list[str]:
    """The ``aqi`` rows the rules engine writes: each station hour's HJ 633 hourly AQI, stamped at the hour."""
    engine = Engine([], registry, derive_always=("aqi",))
    air = sorted((p for p in points if p.domain == "air"), key=lambda p: p.ts_ms)
    for point in air:
        engine.evaluate(point)
    engine.tick(from_ms(air[-1].ts_ms + 2 * 3_600_000))  # close the last hours
    lines = []
    for hour in engine.take_hours():
        device = registry.get(hour.device_id)
        if device is not None and hour.result is not None:
            lines.append(aqi_line(device, hour.hour_ms, hour.result, sorted(hour.values.inputs())))
    return lines


def _district_lines(points: list[Point]) -> list[str]:
    """The report job's ``district_aqi`` rows: one per Beijing day, from the day's mean concentrations."""
    by_day: dict[date, dict[str, list[float]]] = {}
    for p in points:
        if p.domain == "air":
            values = by_day.setdefault(china_date(from_ms(p.ts_ms)), {})
            for name in MEASURED:
                if isinstance(p.values.get(name), float | int):
                    values.setdefault(name, []).append(float(p.values[name]))
    days = []
    for day, values in sorted(by_day.items()):
        means = {name: sum(v) / len(v) for name, v in values.items()}
        result = aqi(means, day, "daily")
        days.append(DayAqi(date=day, aqi=result.aqi, category=result.category, colour=result.colour,
                           primary_pollutants=result.primary_pollutants, valid=True, concentrations=means,
                           stations={}, reasons=[], standard=result.standard, indicative=True))
    return district_lines(days)


@pytest.fixture(scope="session")
def loaded_influx(influxd: Influx, registry: Registry) -> Influx:
    """influxd holding ~a day of data for every registry device plus aqi, district_aqi, pipeline, completeness and
    alerts rows."""
    now = datetime.now(UTC).replace(microsecond=0)
    end = now - timedelta(minutes=5)
    start = end - timedelta(hours=HOURS)
    messages = _simulator_messages(registry, start, end)
    influxd.source = "gulou.simulators.generate" if messages else "catalog fallback"
    if messages is None:
        messages = _fallback_messages(registry, start, end)
    edge = _edge_messages(registry, end)
    # The edge bins must end full: drop their routine readings so no later one hides the 97 %.
    edge_bins = {topic for topic, payload in edge if b"fill_level" in payload}
    messages = [(topic, payload) for topic, payload in messages if topic not in edge_bins]
    batch = _decode_all(registry, [*messages, *edge], now)
    assert len(batch.points) > len(registry), "too few valid readings decoded"
    stamps = [p.ts_ms for p in batch.points] + [s.ts_ms for s in batch.statuses]
    # The range the "dashboard" looks at: all the data, whatever span the simulator chose.
    influxd.start_ms = min(stamps) - 3_600_000
    influxd.end_ms = max(int(now.timestamp() * 1000), max(stamps) + 60_000)
    influxd.write(line_protocol(batch))
    influxd.write(_aqi_lines(registry, batch.points))
    influxd.write(_district_lines(batch.points))
    influxd.write(_ops_lines(registry, int(start.timestamp() * 1000), int(end.timestamp() * 1000)))
    return influxd
