"""The collector writing to a real VictoriaMetrics through the InfluxDB API: exact samples, outage, spool bound."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from gulou.devices.registry import Registry
from gulou.sinks.embedded import EmbeddedStore
from tests.integration.ingest.pipeline import (
    BASE_MS,
    Message,
    Publisher,
    accounted,
    follow_log,
    settled,
    start_ingest,
    stop_ingest,
    telemetry_set,
)
from tests.servers import Mosquitto
from tests.tsdb import VictoriaMetrics
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

# Rejections every test mixes in, beyond the malformed JSON and unknown devices of telemetry_set.
EDGE_REASONS = ("non_finite", "non_finite", "out_of_range", "unknown_field", "wrong_type", "no_metrics",
                "missing_ts", "not_object", "future_timestamp", "malformed_json")


def influx_env(vm: VictoriaMetrics, **extra: str) -> dict[str, str]:
    """Environment selecting the InfluxDB sink (VictoriaMetrics takes any org, bucket and token)."""
    return {"GULOU_INFLUX_URL": vm.url, "GULOU_INFLUX_ORG": "gulou", "GULOU_INFLUX_BUCKET": "gulou",
            "GULOU_INFLUX_TOKEN": "not-checked", **extra}


def edge_cases(registry: Registry, offset: int) -> list[Message]:
    """Valid status messages and invalid telemetry, one per entry of EDGE_REASONS, with distinct timestamps."""
    air = [d for d in registry if d.type == "air_station"]
    lots = [d for d in registry if d.type == "parking_lot"]
    out: list[Message] = []
    for n, device in enumerate(air[:4] + lots[:4]):
        ts = BASE_MS + (offset + n) * 1000
        body: dict[str, Any] = {"ts": ts, "state": "online" if n % 2 else "offline", "battery": 50.0 + n}
        out.append(Message(f"gulou/{device.domain}/{device.id}/status", json.dumps(body).encode(), True))
    topic = f"gulou/air/{air[0].id}/telemetry"
    ts = BASE_MS + offset * 1000
    future = int(time.time() * 1000) + 3600_000
    payloads = [b'{"ts": %d, "pm25": NaN}' % ts, b'{"ts": %d, "pm25": 1e400}' % ts, b'{"ts": %d, "pm25": -5}' % ts,
                b'{"ts": %d, "colour": "grey"}' % ts, b'{"ts": %d, "pm25": "high"}' % ts, b'{"ts": %d}' % ts,
                b'{"pm25": 3.5}', b"[1, 2]", b'{"ts": %d, "pm25": 3.5}' % future, b"\xff\xfe\x00"]
    out += [Message(topic, p, False) for p in payloads]
    return out


def expected_samples(messages: list[Message]) -> Counter[str]:
    """Samples per VictoriaMetrics metric name (``<measurement>_<field>``) the valid messages must produce."""
    samples: Counter[str] = Counter()
    for m in messages:
        if not m.valid:
            continue
        _, domain, _, kind = m.topic.split("/")
        body = json.loads(m.payload)
        if kind == "status":
            samples.update(f"device_status_{f}" for f in ("online", "battery", "rssi") if f in body or f == "online")
        else:
            samples.update(f"{domain}_{f}" for f in body if f not in ("ts", "seq"))
    return samples


def stored_samples(vm: VictoriaMetrics) -> Counter[str]:
    """Samples per metric name of everything the collector wrote except its own pipeline_health."""
    out: Counter[str] = Counter()
    for series in vm.export('{__name__=~"(air|parking|device_status)_.*"}'):
        out[series["metric"]["__name__"]] += len(series["values"])
    return out


def health(store: Path, client_id: str) -> dict[str, Any]:
    """The collector's last health snapshot ({} before the first)."""
    snapshot: dict[str, Any] = accounted(store)["collectors"].get(client_id, {})
    return snapshot


def start_collector(mosquitto: Mosquitto, store: Path, client_id: str, env: dict[str, str],
                    *extra: str) -> subprocess.Popen[bytes]:
    """Start ``gulou ingest`` and wait until it is subscribed."""
    proc = start_ingest(mosquitto.url, store, client_id, "--no-share", *extra, env=env)
    wait_for(lambda: proc.poll() is not None or (store.exists() and health(store, client_id).get("connected") is True),
             20, "collector connected")
    assert proc.poll() is None, stop_ingest(proc)
    return proc


def dead_letters(store_path: Path) -> Counter[tuple[str, bytes]]:
    """(topic, raw payload) of every dead letter."""
    store = EmbeddedStore(store_path)
    try:
        rows = store.deadletters()
    finally:
        store.close()
    return Counter((r["topic"], base64.b64decode(r["payload_b64"]) if "payload_b64" in r else r["payload"].encode())
                   for r in rows)


def test_valid_messages_reach_victoria_metrics_and_the_rest_is_dead_lettered(
        own_mosquitto: Mosquitto, victoria_metrics: VictoriaMetrics, registry: Registry, tmp_path: Path) -> None:
    store = tmp_path / "g.db"
    proc = start_collector(own_mosquitto, store, "it-influx", influx_env(victoria_metrics))
    messages = telemetry_set(registry, 1000, invalid_every=20) + edge_cases(registry, 5000)
    try:
        pub = Publisher(own_mosquitto.port, "it-pub-influx")
        pub.publish(messages)
        pub.close()
        wait_for(lambda: settled(store, len(messages)), 30, "every message accounted")
    finally:
        log = stop_ingest(proc)
    stats = accounted(store)
    valid = sum(m.valid for m in messages)
    assert stats["received"] == len(messages), log
    assert stats["stored"] == valid == 958
    assert stats["spooled"] == 0
    assert stats["rejected"] == len(messages) - valid
    expected_reasons = Counter(EDGE_REASONS) + Counter({"malformed_json": 25, "unknown_device": 25})
    assert stats["by_reason"] == dict(expected_reasons)
    # Nothing went to the embedded store's readings: the InfluxDB sink took them all.
    assert stats["by_domain"]["air"]["stored"] + stats["by_domain"]["parking"]["stored"] == valid
    expected = expected_samples(messages)
    assert set(expected) == {"air_pm25", "air_pm10", "parking_total_spots", "parking_occupied_spots",
                             "device_status_online", "device_status_battery"}
    assert stored_samples(victoria_metrics) == expected
    assert victoria_metrics.count_samples("air_pm25") == sum(1 for m in messages if m.valid and b"pm25" in m.payload)
    # Dead letters keep the topic and the raw bytes, including the payload that is not UTF-8.
    assert dead_letters(store) == Counter((m.topic, m.payload) for m in messages if not m.valid)
    assert "stopped: received 1018" in log


def test_tsdb_outage_spools_then_replays_every_sample_once(
        own_mosquitto: Mosquitto, victoria_metrics: VictoriaMetrics, registry: Registry, tmp_path: Path) -> None:
    store = tmp_path / "g.db"
    cid = "it-outage"
    proc = start_collector(own_mosquitto, store, cid, influx_env(victoria_metrics), "--batch-size", "100")
    first = telemetry_set(registry, 600, invalid_every=50)
    second = telemetry_set(registry, 600, offset=600, invalid_every=50)
    messages = first + second
    try:
        pub = Publisher(own_mosquitto.port, "it-pub-outage")
        pub.publish(first)
        wait_for(lambda: settled(store, len(first)), 20, "first part accounted")
        assert accounted(store)["spooled"] == 0
        victoria_metrics.stop()
        pub.publish(second)
        wait_for(lambda: settled(store, len(messages)), 20, "second part received while the TSDB is down")
        during = accounted(store)
        assert during["spooled"] > 0
        wait_for(lambda: health(store, cid).get("spool", {}).get("depth", 0) > 0, 10, "health shows spool depth")
        victoria_metrics.start()
        # Replay waits out the writer's backoff (1 s doubling, jittered) from the failed attempts.
        wait_for(lambda: accounted(store)["spooled"] == 0, 30, "spool replayed")
        wait_for(lambda: health(store, cid).get("spool", {}).get("depth") == 0, 10, "health shows empty spool")
        pub.close()
    finally:
        log = stop_ingest(proc)
    stats = accounted(store)
    valid = sum(m.valid for m in messages)
    assert stats["received"] == len(messages), log
    assert stats["stored"] == valid
    assert stats["rejected"] == len(messages) - valid == 24
    assert stats["spooled"] == 0
    assert stored_samples(victoria_metrics) == expected_samples(messages)
    assert "spooling to" in log and "recovered after" in log
    assert not any((tmp_path / f"spool-{cid}").glob("*.spool")), "replayed segments are deleted"


def test_full_spool_stops_acknowledging_and_loses_nothing(
        own_mosquitto: Mosquitto, victoria_metrics: VictoriaMetrics, registry: Registry, tmp_path: Path) -> None:
    store = tmp_path / "g.db"
    cid = "it-spool-full"
    max_bytes = 40_000  # about ten batches of 20 readings
    env = influx_env(victoria_metrics, GULOU_SPOOL_MAX_BYTES=str(max_bytes))
    proc = start_collector(own_mosquitto, store, cid, env, "--batch-size", "20")
    log = follow_log(proc)
    messages = telemetry_set(registry, 3000)
    try:
        victoria_metrics.stop()
        pub = Publisher(own_mosquitto.port, "it-pub-spool-full")
        pub.publish(messages)  # the broker acknowledged all: it holds what the collector does not take
        # The collector says so when a batch no longer fits; from then on it holds that batch and takes nothing.
        wait_for(lambda: log.count("spool full"), 30, "the collector to find its spool full")
        wait_for(lambda: health(store, cid).get("spool", {}).get("fill_ratio", 0) >= 0.85, 30, "health showing it")
        full = accounted(store)
        # The log says "spool full" once every 30 s; the health report counts every refused attempt.
        refusals = health(store, cid)["spool"]["refusals"]
        wait_for(lambda: health(store, cid)["spool"]["refusals"] >= refusals + 2, 30,
                 "two more attempts at the held batch")
        held = accounted(store)
        # Nothing more is accepted (so nothing more acknowledged) while the spool is full.
        assert held["received"] == full["received"] < len(messages)
        assert held["spooled"] == full["spooled"] == held["received"] > 0
        spool = health(store, cid)["spool"]
        assert spool["max_bytes"] == max_bytes and spool["bytes"] <= max_bytes and spool["depth"] > 0
        victoria_metrics.start()
        wait_for(lambda: accounted(store)["stored"] >= len(messages), 40, "everything stored after the TSDB returns")
        pub.close()
    finally:
        output = stop_ingest(proc)
    stats = accounted(store)
    assert stats["received"] == stats["stored"] == len(messages), output
    assert stats["spooled"] == stats["rejected"] == 0
    assert stored_samples(victoria_metrics) == expected_samples(messages)
    assert "spool full" in output
