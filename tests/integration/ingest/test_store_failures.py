"""The collector when the store fails it: InfluxDB refusing a batch, refusing a spooled batch on replay, a TSDB
too slow to answer, and the embedded store's disk filling up. Each test first proves its fault really happened."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from gulou.devices.contract import SINK_REJECTED
from gulou.devices.registry import Registry
from tests.influx_stub import InfluxStub, influx_stub
from tests.integration.ingest.pipeline import (
    Publisher,
    accounted,
    follow_log,
    reading_keys,
    settled,
    start_ingest,
    stop_ingest,
    telemetry_set,
)
from tests.integration.ingest.tcp_proxy import FreezingProxy
from tests.integration.ingest.test_collector_influx import (
    dead_letters,
    expected_samples,
    health,
    influx_env,
    start_collector,
    stored_samples,
)
from tests.servers import Mosquitto
from tests.tsdb import VictoriaMetrics
from tests.waiting import wait_for

pytestmark = pytest.mark.integration
READING_MEASUREMENTS = ("air,", "parking,")


def is_readings(body: str) -> bool:
    """Whether a write carries readings (not the collector's own health or completeness lines)."""
    return any(line.startswith(READING_MEASUREMENTS) for line in body.splitlines())


@pytest.mark.parametrize("status", [400, 413, 422])
def test_a_refused_batch_becomes_dead_letters(own_mosquitto: Mosquitto, registry: Registry, tmp_path: Path,
                                              status: int) -> None:
    store = tmp_path / "g.db"
    messages = telemetry_set(registry, 300, invalid_every=25)
    valid = [m for m in messages if m.valid]
    with influx_stub(lambda body: status if is_readings(body) else 204) as stub:
        proc = start_collector(own_mosquitto, store, f"it-refused-{status}", influx_env_for(stub))
        try:
            pub = Publisher(own_mosquitto.port, f"it-pub-refused-{status}")
            pub.publish(messages)
            pub.close()
            wait_for(lambda: settled(store, len(messages)), 30, "every message accounted")
        finally:
            log = stop_ingest(proc)
        assert status in stub.statuses(), "the stub never refused a write: the test did not test anything"
        assert stub.lines("air") == stub.lines("parking") == []
    stats = accounted(store)
    assert stats["received"] == len(messages), log
    assert stats["stored"] == stats["spooled"] == 0
    assert stats["rejected"] == len(messages)
    assert stats["by_reason"][SINK_REJECTED] == len(valid)
    # Each refused message is kept whole, under its own topic, with the store's answer as the detail.
    assert dead_letters(store) == Counter((m.topic, m.payload) for m in messages)
    assert f"HTTP {status}" in log


def test_a_server_error_spools_instead(own_mosquitto: Mosquitto, registry: Registry, tmp_path: Path) -> None:
    """The other side of the line: 503 is an outage, so the batch waits in the spool rather than being dropped."""
    store = tmp_path / "g.db"
    messages = telemetry_set(registry, 100)
    with influx_stub(lambda body: 503 if is_readings(body) else 204) as stub:
        proc = start_collector(own_mosquitto, store, "it-503", influx_env_for(stub))
        try:
            pub = Publisher(own_mosquitto.port, "it-pub-503")
            pub.publish(messages)
            pub.close()
            wait_for(lambda: settled(store, len(messages)), 30, "every message accounted")
            stats = accounted(store)
        finally:
            stop_ingest(proc)
        assert 503 in stub.statuses()
    assert stats["spooled"] == len(messages) and stats["rejected"] == 0


def test_a_batch_refused_on_replay_becomes_dead_letters(own_mosquitto: Mosquitto, registry: Registry,
                                                        tmp_path: Path) -> None:
    store = tmp_path / "g.db"
    cid = "it-refused-replay"
    refusing = threading.Event()
    messages = telemetry_set(registry, 120)

    def answer(body: str) -> int:
        if not is_readings(body):
            return 204
        return 400 if refusing.is_set() else 503

    with influx_stub(answer) as stub:
        proc = start_collector(own_mosquitto, store, cid, influx_env_for(stub), "--batch-size", "40")
        try:
            pub = Publisher(own_mosquitto.port, "it-pub-refused-replay")
            pub.publish(messages)
            pub.close()
            wait_for(lambda: accounted(store)["spooled"] == len(messages), 30, "everything spooled during the outage")
            refusing.set()  # the store is back, but now refuses what it is sent
            wait_for(lambda: accounted(store)["spooled"] == 0, 60, "the spool replayed (and refused)")
        finally:
            log = stop_ingest(proc)
        assert 503 in stub.statuses() and 400 in stub.statuses()
        assert stub.lines("air") == stub.lines("parking") == []
    stats = accounted(store)
    assert stats["received"] == len(messages), log
    assert stats["stored"] == 0 and stats["rejected"] == len(messages)
    assert stats["by_reason"] == {SINK_REJECTED: len(messages)}
    # Refused on replay, the records are kept as the line protocol that was refused, under each device's topic.
    letters = dead_letters(store)
    assert sum(letters.values()) == len(messages)
    assert {topic for topic, _ in letters} == {m.topic for m in messages}
    assert all(payload.startswith(READING_MEASUREMENTS[0].encode()) or payload.startswith(b"parking,")
               for _, payload in letters)
    assert "refused spooled batch" in log
    assert not any((tmp_path / f"spool-{cid}").glob("*.spool")), "nothing is left to replay"


def influx_env_for(stub: InfluxStub) -> dict[str, str]:
    """The InfluxDB sink pointed at the stub."""
    return {"GULOU_INFLUX_URL": stub.url, "GULOU_INFLUX_ORG": "gulou", "GULOU_INFLUX_BUCKET": "gulou",
            "GULOU_INFLUX_TOKEN": "not-checked"}


@pytest.fixture
def slow_tsdb(victoria_metrics: VictoriaMetrics) -> Iterator[FreezingProxy]:
    """VictoriaMetrics behind a proxy that can stop its answers while the connection stays open."""
    with FreezingProxy(victoria_metrics.port) as proxy:
        yield proxy


def test_a_slow_tsdb_spools_then_replays_every_sample_once(own_mosquitto: Mosquitto,
                                                           victoria_metrics: VictoriaMetrics,
                                                           slow_tsdb: FreezingProxy, registry: Registry,
                                                           tmp_path: Path) -> None:
    store = tmp_path / "g.db"
    cid = "it-slow"
    env = influx_env(victoria_metrics, GULOU_INFLUX_URL=f"http://127.0.0.1:{slow_tsdb.port}",
                     GULOU_INFLUX__TIMEOUT_S="1")
    proc = start_collector(own_mosquitto, store, cid, env, "--batch-size", "50")
    log = follow_log(proc)
    first = telemetry_set(registry, 200)
    second = telemetry_set(registry, 200, offset=200)
    messages = first + second
    try:
        pub = Publisher(own_mosquitto.port, "it-pub-slow")
        pub.publish(first)
        wait_for(lambda: accounted(store)["stored"] == len(first), 30, "first part stored")
        slow_tsdb.freeze()  # the server still takes requests, its answers never come
        pub.publish(second)
        wait_for(lambda: settled(store, len(messages)), 60, "second part received while the TSDB hangs")
        assert accounted(store)["spooled"] > 0, "nothing was spooled: the slow server was never waited on"
        assert log.count("spooling to") >= 1
        slow_tsdb.thaw()
        wait_for(lambda: accounted(store)["spooled"] == 0, 60, "spool replayed once the TSDB answers")
        wait_for(lambda: health(store, cid).get("spool", {}).get("depth") == 0, 30, "health shows an empty spool")
        pub.close()
    finally:
        output = stop_ingest(proc)
    stats = accounted(store)
    assert stats["received"] == stats["stored"] == len(messages), output
    assert stats["rejected"] == 0
    # A write that timed out may still have landed; replaying it writes the same points again, which the
    # store keeps once (same series and timestamp).
    assert stored_samples(victoria_metrics) == expected_samples(messages)
    assert "recovered after" in output


def _limit_file_size(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_a_full_disk_stops_the_collector_without_losing_anything(own_mosquitto: Mosquitto, registry: Registry,
                                                                  tmp_path: Path) -> None:
    """SQLite cannot grow the store file: the collector stops loudly, acks nothing unstored, and a restart with
    room on the disk stores every message exactly once."""
    store = tmp_path / "g.db"
    cid = "it-disk-full"
    # The store and its write-ahead log may not grow past 256 KiB: the first batches fit, the rest cannot.
    limit = 256 * 1024
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gulou", "ingest", "--broker", own_mosquitto.url, "--store", str(store),
         "--client-id", cid, "--log-level", "INFO", "--no-share", "--batch-size", "200"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=lambda: _limit_file_size(limit),
    )
    log = follow_log(proc)
    messages = telemetry_set(registry, 6000)
    try:
        wait_for(lambda: proc.poll() is not None or (store.exists() and cid in accounted(store)["collectors"]), 30,
                 "collector up")
        pub = Publisher(own_mosquitto.port, "it-pub-disk-full")
        pub.publish(messages)
        pub.close()
        wait_for(lambda: proc.poll() is not None, 60, "the collector to stop on the full disk")
    finally:
        output = stop_ingest(proc)
    assert proc.returncode != 0, output
    assert "full" in output.lower() or "too large" in output.lower(), output[-3000:]
    stored_before = len(reading_keys(store))
    assert 0 < stored_before < len(messages), "the disk filled before the first batch or after the last one"
    assert log.count("collector failed") >= 1
    # Room again, same client id: the broker kept every message the collector had not acknowledged.
    proc = start_ingest(own_mosquitto.url, store, cid, "--no-share")
    try:
        wait_for(lambda: len(reading_keys(store)) >= len(messages), 90, "the rest stored after the restart")
    finally:
        stop_ingest(proc)
    stats = accounted(store)
    assert len(reading_keys(store)) == len(messages)
    assert stats["received"] == stats["stored"] == len(messages)
    assert stats["rejected"] == 0
