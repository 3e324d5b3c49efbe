"""Property-based: whatever arrives on the broker, a running collector survives it and accounts for every message."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from gulou.devices.base import DOMAINS
from gulou.devices.catalog import CATALOG
from gulou.devices.contract import STATUS_FILTER, TELEMETRY_FILTER, Decoder, Reading, Rejection, StatusUpdate
from gulou.devices.registry import Device, Registry
from gulou.sinks.embedded import EmbeddedStore
from gulou.sinks.embedded_queries import rfc3339
from tests.integration.ingest.pipeline import Message, Publisher, accounted, start_ingest, stop_ingest
from tests.servers import Mosquitto
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)
# Timestamps stay a day clear of the future-skew boundary, so the verdict cannot flip between now and receipt.
DAY_MS = 86_400_000
NOW_MS = int(NOW.timestamp() * 1000)
PAST_MS = st.integers(NOW_MS - 60 * DAY_MS, NOW_MS - DAY_MS)
FUTURE_MS = st.integers(NOW_MS + DAY_MS, 2**53)
# What Mosquitto accepts in a topic level: UTF-8 without control characters, surrogates or non-characters.
LEVEL = st.text(st.characters(exclude_categories=("Cc", "Cs", "Cn"), exclude_characters="/+#"), max_size=12)
JSON_TOKENS = ("NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1" + "0" * 400, "1e-400", "true", "null", '""',
               "[]", "{}", '"NaN"')


def _devices(registry: Registry) -> list[Device]:
    """Two devices of every type, so each payload model is exercised."""
    out: list[Device] = []
    for kind in CATALOG:
        out += [d for d in registry if d.type == kind][:2]
    return out


def _value(device_type: str, draw: st.DrawFn) -> tuple[str, Any]:
    """One in-range metric of the device type (what a healthy device sends)."""
    metric = draw(st.sampled_from(CATALOG[device_type].metrics))
    if metric.kind == "bool":
        return metric.name, draw(st.booleans())
    low, high = metric.minimum or 0, metric.maximum if metric.maximum is not None else 1000
    if metric.kind == "int":
        return metric.name, draw(st.integers(int(low), int(high)))
    return metric.name, draw(st.floats(low, high, allow_nan=False))


def _ts(draw: st.DrawFn) -> Any:
    choice = draw(st.integers(0, 9))
    if choice < 6:
        return draw(PAST_MS)
    if choice < 8:  # RFC 3339 with an offset, as devices in local time send it
        ms = draw(PAST_MS)
        tz = timezone(timedelta(hours=draw(st.integers(-12, 14))))
        return datetime.fromtimestamp(ms / 1000, tz).isoformat()
    return draw(st.one_of(FUTURE_MS, st.integers(-(2**70), 946_684_799_999), st.sampled_from(
        ["2026-01-01T00:00:00", "yesterday", "", "2026-13-45T99:00:00+08:00"]), st.floats(), st.none()))


def _mutate(body: dict[str, Any], draw: st.DrawFn) -> bytes:
    """The body as a device would send it, or broken in one of the ways firmware breaks it."""
    how = draw(st.sampled_from(("valid", "valid", "valid", "token", "wrong_type", "unknown_field", "drop_ts",
                                "truncate", "nest", "unicode", "not_object", "empty", "bytes", "huge", "seq")))
    metric = next((k for k in body if k not in ("ts", "seq")), "pm25")
    if how == "token":  # NaN, Infinity, huge numbers: not JSON at all, or out of every range
        text = json.dumps({**body, metric: "@@"}).replace('"@@"', draw(st.sampled_from(JSON_TOKENS)))
        return text.encode()
    if how == "wrong_type":
        body[metric] = draw(st.one_of(st.text(max_size=5), st.lists(st.integers(), max_size=3), st.booleans(),
                                      st.none(), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)))
    elif how == "unknown_field":
        body[draw(st.text(min_size=1, max_size=8))] = draw(st.integers() | st.text(max_size=8))
    elif how == "drop_ts":
        body.pop("ts", None)
    elif how == "truncate":
        whole = json.dumps(body).encode()
        return whole[: draw(st.integers(0, max(0, len(whole) - 1)))]
    elif how == "nest":  # deep nesting: the parser's depth limit, not Python's recursion limit, must answer
        depth = draw(st.integers(1, 20_000))
        body[metric] = "@@"
        return json.dumps(body).replace('"@@"', "[" * depth + "1" + "]" * depth).encode()
    elif how == "unicode":
        body[draw(st.sampled_from(["备注", "métrique", "🌫", metric]))] = draw(st.text(max_size=10))
        return json.dumps(body, ensure_ascii=draw(st.booleans())).encode()
    elif how == "not_object":
        return json.dumps(draw(st.one_of(st.lists(st.integers(), max_size=3), st.text(max_size=5), st.integers(),
                                         st.just(None)))).encode()
    elif how == "empty":
        return draw(st.sampled_from([b"", b" ", b"{}", b"\n", b"null"]))
    elif how == "bytes":  # random bytes, often not UTF-8
        return draw(st.binary(max_size=200))
    elif how == "huge":
        body[metric] = draw(st.sampled_from([10**30, -(10**30), 2**63, 1.7e308, -1.7e308, 2**64 + 0.5]))
    elif how == "seq":
        body["seq"] = draw(st.one_of(st.integers(-(2**70), 2**70), st.floats(allow_nan=False), st.text(max_size=3)))
    return json.dumps(body, ensure_ascii=False).encode()


@st.composite
def contract_message(draw: st.DrawFn, devices: list[Device]) -> tuple[str, bytes]:
    """A topic in the contract's shape (mostly a registered device) with a plausible or broken payload."""
    device = draw(st.sampled_from(devices))
    kind = draw(st.sampled_from(("telemetry", "telemetry", "status")))
    domain = draw(st.sampled_from((device.domain,) * 6 + DOMAINS + ("soil", "", "Air")))
    device_id = device.id if draw(st.integers(0, 5)) else draw(LEVEL)
    body: dict[str, Any] = {"ts": _ts(draw)}
    if kind == "status":
        body["state"] = draw(st.sampled_from(("online", "offline", "online", "unknown")))
        if draw(st.booleans()):
            body["battery"] = draw(st.floats(-10, 110, allow_nan=False))
        if draw(st.booleans()):
            body["rssi"] = draw(st.integers(-200, 10))
    else:
        for _ in range(draw(st.integers(0, 3))):
            name, value = _value(device.type, draw)
            body[name] = value
    return f"gulou/{domain}/{device_id}/{kind}", _mutate(body, draw)


@st.composite
def stray_message(draw: st.DrawFn) -> tuple[str, bytes]:
    """Any topic with any bytes: extra or missing levels, other roots, unicode, empty levels."""
    levels = draw(st.lists(LEVEL, min_size=0, max_size=6))
    root = draw(st.sampled_from(("gulou", "gulou", "Gulou", "other", "")))
    if draw(st.booleans()) and levels:
        levels[-1] = draw(st.sampled_from(("telemetry", "status")))
    topic = "/".join([root, *levels]) or "gulou"
    return topic, draw(st.binary(max_size=300))


def subscribed(topic: str) -> bool:
    """Whether the collector's subscriptions deliver this topic at all."""
    return bool(mqtt.topic_matches_sub(TELEMETRY_FILTER, topic) or mqtt.topic_matches_sub(STATUS_FILTER, topic))


def start_fuzz_collector(mosquitto: Mosquitto, store: Path, cid: str) -> subprocess.Popen[bytes]:
    """``gulou ingest`` on its own session, once it is subscribed."""
    proc = start_ingest(mosquitto.url, store, cid, "--no-share")
    wait_for(lambda: proc.poll() is not None
             or (store.exists() and accounted(store)["collectors"].get(cid, {}).get("connected") is True),
             20, "collector connected")
    assert proc.poll() is None, stop_ingest(proc)
    return proc


def test_seq_beyond_64_bits_is_dead_lettered_not_fatal(own_mosquitto: Mosquitto, registry: Registry,
                                                       tmp_path: Path) -> None:
    # seq needs an upper bound too: SQLite's INTEGER stops at 2**63 - 1, and a larger seq that passes
    # validation kills the writer (and, left unacknowledged, kills it again after every restart).
    store = tmp_path / "g.db"
    proc = start_fuzz_collector(own_mosquitto, store, "it-seq")
    device = next(d for d in registry if d.type == "air_station")
    ts = NOW_MS - DAY_MS
    topic = f"gulou/air/{device.id}/telemetry"
    messages = [Message(topic, b'{"ts": %d, "seq": %d, "pm25": 12.5}' % (ts, 2**63), False),
                Message(topic, b'{"ts": %d, "seq": %d, "pm25": 12.5}' % (ts + 1000, 2**63 - 1), True)]
    try:
        pub = Publisher(own_mosquitto.port, "it-pub-seq")
        pub.publish(messages)
        pub.close()
        wait_for(lambda: proc.poll() is not None or accounted(store)["received"] >= 2, 15, "both accounted")
        assert proc.poll() is None, "collector died on a 64-bit seq"
    finally:
        log = stop_ingest(proc)
    stats = accounted(store)
    assert stats["received"] == 2, log
    assert stats["stored"] == 1 and stats["by_reason"] == {"out_of_range": 1}


def test_collector_survives_and_accounts_for_arbitrary_input(own_mosquitto: Mosquitto, registry: Registry,
                                                               tmp_path: Path) -> None:
    store = tmp_path / "g.db"
    cid = "it-fuzz"
    proc = start_fuzz_collector(own_mosquitto, store, cid)
    pub = Publisher(own_mosquitto.port, "it-pub-fuzz")
    decoder = Decoder(registry)
    devices = _devices(registry)
    expected: Counter[str] = Counter()  # received, stored, rejected and "reason:<r>"
    dead: Counter[tuple[str, bytes]] = Counter()
    readings: set[tuple[str, str]] = set()
    published = 0

    # No shrinking: the collector's state carries over between examples, so a smaller replay of a failing
    # batch says nothing; the failing batch and the collector's log are reported as they are.
    @settings(max_examples=50, deadline=None, database=None, phases=(Phase.explicit, Phase.generate),
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
    @given(st.lists(st.one_of(contract_message(devices), contract_message(devices), stray_message()),
                    min_size=40, max_size=120))
    def publish_and_account(batch: list[tuple[str, bytes]]) -> None:
        nonlocal published
        for topic, payload in batch:
            if not subscribed(topic):
                continue
            expected["received"] += 1
            result = decoder.decode(topic, payload)
            if isinstance(result, Rejection):
                expected["rejected"] += 1
                expected[f"reason:{result.reason}"] += 1
                dead[(topic, payload)] += 1
            else:
                assert isinstance(result, Reading | StatusUpdate)
                expected["stored"] += 1
                if isinstance(result, Reading):
                    readings.add((result.device.id, rfc3339(int(result.ts.timestamp() * 1000))))
        pub.publish(Message(t, p, False) for t, p in batch)
        published += len(batch)
        _wait_received(store, expected["received"], proc)
        stats = accounted(store)
        assert proc.poll() is None, "collector process died"
        assert stats["received"] == expected["received"]
        assert stats["stored"] == expected["stored"]
        assert stats["rejected"] == expected["rejected"]
        assert stats["stored"] + stats["rejected"] == stats["received"]
        assert {f"reason:{k}": v for k, v in stats["by_reason"].items()} == {
            k: v for k, v in expected.items() if k.startswith("reason:")}

    started = time.time()
    try:
        publish_and_account()
        # The health snapshot (every 5 s) catches up with the totals: the collector is alive and reporting.
        wait_for(lambda: accounted(store)["collectors"][cid]["received"] == expected["received"], 10,
                 "health updated with every message")
        health = accounted(store)["collectors"][cid]
        assert health["connected"] is True and datetime.fromisoformat(health["updated_at"]).timestamp() > started
        assert proc.poll() is None
    finally:
        pub.close()
        log = stop_ingest(proc)
    assert proc.returncode == 0, log
    assert published > 1000 and expected["received"] > 500
    reasons = {k for k in expected if k.startswith("reason:")}
    assert len(reasons) >= 10 and expected["stored"] > 50, expected
    # Every dead letter keeps its topic and the raw payload bytes; non-UTF-8 ones also as base64.
    es = EmbeddedStore(store)
    try:
        rows = es.deadletters()
        stored_readings = {(r["device_id"], r["ts"]) for r in es.query_readings()}
    finally:
        es.close()
    got: Counter[tuple[str, bytes]] = Counter()
    binary = 0
    for row in rows:
        if "payload_b64" in row:
            binary += 1
            raw = base64.b64decode(row["payload_b64"])
            with pytest.raises(UnicodeDecodeError):
                raw.decode("utf-8")
        else:
            raw = row["payload"].encode("utf-8")
        got[(row["topic"], raw)] += 1
    assert got == dead
    assert binary == sum(n for (_, p), n in dead.items() if not _utf8(p)) > 0
    assert stored_readings == readings


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _wait_received(store: Path, n: int, proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """Poll the store (tightly: this runs once per example) until it counted n received messages."""
    deadline = time.monotonic() + timeout
    while accounted(store)["received"] < n:
        if proc.poll() is not None:
            tail = proc.stdout.read().decode(errors="replace")[-4000:] if proc.stdout else ""
            raise AssertionError(f"collector exited with {proc.returncode}:\n{tail}")
        assert time.monotonic() < deadline, f"collector did not account for {n} messages in {timeout} s"
        time.sleep(0.02)
