"""The embedded SQLite store: idempotence, queries, accounting, dead letters, concurrency, crash safety."""

from __future__ import annotations

import base64
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from gulou.devices.registry import Registry
from gulou.sinks.embedded import SCHEMA_VERSION, CountRow, EmbeddedStore
from gulou.sinks.embedded_queries import HOUR_MS
from gulou.tsdb.records import Batch, DeadLetter, Point, StatusEvent

H0 = 1_790_002_800_000  # an hour boundary (2026-09-21T15:00:00Z)
assert H0 % HOUR_MS == 0


def air(device: str, ts_ms: int, pm25: float, seq: int | None = None) -> Point:
    return Point(device, "air", "air_station", "鼓东街道", "air-01", ts_ms, {"pm25": pm25, "o3": 40.0}, seq)


def water(device: str, ts_ms: int, ph: float) -> Point:
    return Point(device, "water", "water_station", "南街街道", "river-01", ts_ms, {"ph": ph}, None, {"river": "白马河"})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    s = EmbeddedStore(tmp_path / "gulou.db")
    yield s
    s.close()


def test_schema_versioned_and_wal(store: EmbeddedStore) -> None:
    db = sqlite3.connect(store.path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    db.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "new.db")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(RuntimeError, match="schema version"):
        EmbeddedStore(tmp_path / "new.db")


def test_duplicates_overwrite_never_duplicate(store: EmbeddedStore) -> None:
    store.write(Batch(points=[air("AQ-1", H0, 10.0), air("AQ-2", H0, 20.0)]))
    store.write(Batch(points=[air("AQ-1", H0, 11.0)]))  # re-delivered with a corrected value
    store.write(Batch(points=[air("AQ-1", H0, 11.0), air("AQ-2", H0, 20.0)]))
    rows = store.query_readings()
    assert [(r["device_id"], r["pm25"]) for r in rows] == [("AQ-1", 11.0), ("AQ-2", 20.0)]
    status = StatusEvent("AQ-1", "air", "鼓东街道", "air-01", H0, True, 90.0, -60.0)
    store.write(Batch(statuses=[status, status]))
    store.write(Batch(statuses=[status]))
    assert len(store.status_history()) == 1


def test_query_readings_row_shape(store: EmbeddedStore) -> None:
    store.write(Batch(points=[water("WQ-1", H0 + 1234, 7.5)]))
    store.write(Batch(points=[air("AQ-1", H0, 12.5, seq=3)]))
    assert store.query_readings() == [
        {"device_id": "AQ-1", "domain": "air", "type": "air_station", "street": "鼓东街道", "site": "air-01",
         "ts": "2026-09-21T15:00:00.000Z", "seq": 3, "pm25": 12.5, "o3": 40.0},
        {"device_id": "WQ-1", "domain": "water", "type": "water_station", "street": "南街街道", "site": "river-01",
         "ts": "2026-09-21T15:00:01.234Z", "seq": None, "river": "白马河", "ph": 7.5},
    ]


def test_query_filters_order_and_limit(store: EmbeddedStore) -> None:
    points = [air(f"AQ-{d}", H0 + m * 60_000, float(m)) for m in range(10) for d in (2, 1)]
    points += [water("WQ-1", H0 + m * 60_000, 7.0) for m in range(10)]
    store.write(Batch(points=points))
    everything = store.query_readings()
    assert len(everything) == 30
    keys = [(r["ts"], r["device_id"]) for r in everything]
    assert keys == sorted(keys)
    assert {r["domain"] for r in store.query_readings(domain="water")} == {"water"}
    one = store.query_readings(device="AQ-2")
    assert len(one) == 10 and {r["device_id"] for r in one} == {"AQ-2"}
    window = store.query_readings(domain="air", since_ms=H0 + 2 * 60_000, until_ms=H0 + 5 * 60_000)
    assert [(r["device_id"], r["pm25"]) for r in window] == [
        ("AQ-1", 2.0), ("AQ-2", 2.0), ("AQ-1", 3.0), ("AQ-2", 3.0), ("AQ-1", 4.0), ("AQ-2", 4.0)]
    assert len(store.query_readings(limit=4)) == 4
    assert store.query_readings(device="AQ-1", limit=1)[0]["pm25"] == 0.0
    assert store.query_readings(device="nope") == []


def test_status_history(store: EmbeddedStore) -> None:
    store.write(Batch(statuses=[
        StatusEvent("AQ-1", "air", "鼓东街道", "air-01", H0 + 5000, False),
        StatusEvent("AQ-1", "air", "鼓东街道", "air-01", H0, True, 80.0, -70.0),
        StatusEvent("WQ-1", "water", "南街街道", "river-01", H0, True),
    ]))
    history = store.status_history("AQ-1")
    assert [(h["ts"], h["online"], h["battery"]) for h in history] == [
        ("2026-09-21T15:00:00.000Z", True, 80.0), ("2026-09-21T15:00:05.000Z", False, None)]
    assert len(store.status_history()) == 3


def test_deadletter_round_trip_with_binary_payloads(store: EmbeddedStore) -> None:
    binary = b"\xff\xfe\x00{not json"
    text = '{"ts": 1, "pm25": "高"}'.encode()
    store.add_deadletters([
        DeadLetter("gulou/air/AQ-1/telemetry", text, "wrong_type", "pm25: not a number", H0, "AQ-1", "air"),
        DeadLetter("gulou/air/AQ-9/telemetry", binary, "malformed_json", "invalid JSON", H0 + 1000, "AQ-9", "air"),
        DeadLetter("weird/topic", b"", "bad_topic", "not a contract topic", H0 + 2000),
    ])
    newest_first = store.deadletters()
    assert [d["reason"] for d in newest_first] == ["bad_topic", "malformed_json", "wrong_type"]
    bad = store.deadletters(reason="malformed_json")
    assert len(bad) == 1
    assert base64.b64decode(bad[0]["payload_b64"]) == binary
    assert bad[0]["payload"] == binary.decode("utf-8", errors="replace")
    assert bad[0]["received_at"] == "2026-09-21T15:00:01.000Z"
    good = store.deadletters(reason="wrong_type")[0]
    assert good == {"topic": "gulou/air/AQ-1/telemetry", "reason": "wrong_type", "detail": "pm25: not a number",
                    "payload": '{"ts": 1, "pm25": "高"}', "received_at": "2026-09-21T15:00:00.000Z",
                    "device_id": "AQ-1", "domain": "air", "source": "mqtt", "mn": None}
    assert newest_first[0]["device_id"] is None and newest_first[0]["payload"] == ""
    assert len(store.deadletters(limit=2)) == 2


def test_stats_shape_and_arithmetic(store: EmbeddedStore) -> None:
    h1 = H0 + HOUR_MS
    store.record(Batch(points=[air("AQ-1", H0, 1.0)]), [
        DeadLetter("gulou/air/AQ-2/telemetry", b"x", "malformed_json", "bad", H0, "AQ-2", "air"),
    ], [
        CountRow(H0, "AQ-1", "air", "received", "", 3), CountRow(H0, "AQ-1", "air", "stored", "", 3),
        CountRow(H0, "AQ-2", "air", "received", "", 2), CountRow(H0, "AQ-2", "air", "rejected", "malformed_json", 2),
    ])
    store.add_counts([
        CountRow(H0, "AQ-1", "air", "received", "", 1),  # same key: incremented, not a new row
        CountRow(h1, "WQ-1", "water", "received", "", 5), CountRow(h1, "WQ-1", "water", "spooled", "", 5),
        CountRow(h1, "WQ-1", "water", "replayed", "", 2), CountRow(h1, "WQ-1", "water", "stored", "", 2),
        CountRow(h1, "WQ-1", "water", "rejected", "out_of_range", 1),
        CountRow(h1, "WQ-1", "water", "rejected", "malformed_json", 1),
    ])
    store.set_health("c1", {"spool": {"depth": 2, "points": 3, "bytes": 100, "max_bytes": 1000}, "stalled": False})
    store.set_health("c2", {"spool": {"depth": 1, "points": 2, "bytes": 150, "max_bytes": 1000}, "reconnects": 4})
    store.set_health("c2", {"spool": {"depth": 1, "points": 2, "bytes": 400, "max_bytes": 1000}, "reconnects": 5})
    stats = store.stats()
    assert set(stats) == {"received", "stored", "rejected", "spooled", "by_domain", "by_source", "by_reason",
                          "by_device", "spool", "collectors"}
    assert stats["by_source"] == {"mqtt": {"received": 11, "stored": 5, "rejected": 4}}
    assert (stats["received"], stats["stored"], stats["rejected"], stats["spooled"]) == (11, 5, 4, 3)
    assert stats["by_domain"] == {"air": {"received": 6, "stored": 3, "rejected": 2},
                                  "water": {"received": 5, "stored": 2, "rejected": 2}}
    assert stats["by_reason"] == {"malformed_json": 3, "out_of_range": 1}
    assert stats["by_device"] == {"AQ-1": {"received": 4, "stored": 3, "rejected": 0},
                                  "AQ-2": {"received": 2, "stored": 0, "rejected": 2},
                                  "WQ-1": {"received": 5, "stored": 2, "rejected": 2}}
    assert stats["spool"] == {"depth": 3, "points": 5, "bytes": 500, "max_bytes": 2000, "fill_ratio": 0.25}
    assert set(stats["collectors"]) == {"c1", "c2"}
    assert stats["collectors"]["c2"]["reconnects"] == 5
    assert stats["collectors"]["c1"]["updated_at"].endswith("Z")


def test_stats_of_empty_store(store: EmbeddedStore) -> None:
    assert store.stats() == {
        "received": 0, "stored": 0, "rejected": 0, "spooled": 0, "by_domain": {}, "by_source": {}, "by_reason": {},
        "by_device": {},
        "spool": {"depth": 0, "points": 0, "bytes": 0, "max_bytes": 0, "fill_ratio": 0.0}, "collectors": {},
    }


def test_completeness_arithmetic(store: EmbeddedStore, registry: Registry) -> None:
    water_dev = next(d for d in registry if d.type == "water_station")  # 300 s interval: 12 per hour
    lot = next(d for d in registry if d.type == "parking_lot")  # 60 s: 60 per hour
    small = Registry(devices={water_dev.id: water_dev, lot.id: lot})
    expected = {water_dev.id: 3600 // water_dev.interval_s, lot.id: 3600 // lot.interval_s}
    store.add_counts([
        CountRow(H0, water_dev.id, "water", "received", "", expected[water_dev.id]),
        CountRow(H0, water_dev.id, "water", "stored", "", expected[water_dev.id] - 3),
        CountRow(H0, water_dev.id, "water", "rejected", "out_of_range", 3),
        CountRow(H0, lot.id, "parking", "received", "", 30), CountRow(H0, lot.id, "parking", "stored", "", 30),
        CountRow(H0 + 2 * HOUR_MS, lot.id, "parking", "stored", "", 99),  # outside the window
        CountRow(H0, "AQ-unregistered", "air", "stored", "", 5),  # not in the registry: not reported
    ])
    rows = store.completeness(H0 + 10, H0 + 2 * HOUR_MS, small)
    assert len(rows) == 4  # two hours x two devices
    by_key = {(r["hour_ms"], r["device_id"]): r for r in rows}
    w = by_key[(H0, water_dev.id)]
    assert (w["expected"], w["received"], w["stored"], w["rejected"]) == (
        expected[water_dev.id], expected[water_dev.id], expected[water_dev.id] - 3, 3)
    assert w["ratio"] == round((expected[water_dev.id] - 3) / expected[water_dev.id], 4)
    assert w["hour"] == "2026-09-21T15:00:00.000Z" and w["domain"] == "water" and w["street"] == water_dev.street
    p = by_key[(H0, lot.id)]
    assert (p["expected"], p["stored"], p["ratio"]) == (expected[lot.id], 30, round(30 / expected[lot.id], 4))
    silent = by_key[(H0 + HOUR_MS, lot.id)]
    assert (silent["received"], silent["stored"], silent["ratio"]) == (0, 0, 0.0)


def test_record_is_one_transaction(store: EmbeddedStore) -> None:
    # A bad count row aborts the whole call: the readings of the same call are not stored either.
    bad = CountRow(H0, None, "air", "stored", "", 1)  # type: ignore[arg-type]
    with pytest.raises(Exception, match="NOT NULL"):
        store.record(Batch(points=[air("AQ-1", H0, 1.0)]), [], [bad])
    assert store.query_readings() == []
    assert store.stats()["stored"] == 0


def test_second_connection_reads_while_writer_holds_a_transaction(store: EmbeddedStore) -> None:
    store.write(Batch(points=[air("AQ-1", H0, 1.0)]))
    reader = EmbeddedStore(store.path, readonly=True, busy_timeout_ms=200)
    try:
        with store._transaction() as db:  # the writer is mid-transaction, holding the write lock
            EmbeddedStore._insert_batch(db, Batch(points=[air("AQ-2", H0, 2.0)]))
            assert [r["device_id"] for r in reader.query_readings()] == ["AQ-1"]  # sees committed data only
            assert reader.stats()["received"] == 0
        assert [r["device_id"] for r in reader.query_readings()] == ["AQ-1", "AQ-2"]
    finally:
        reader.close()


def test_readonly_open_of_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        EmbeddedStore(tmp_path / "missing.db", readonly=True)


def test_write_survives_sigkill_right_after_returning(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    child = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from gulou.tsdb.records import Batch, Point
        from gulou.sinks.embedded import CountRow, EmbeddedStore
        store = EmbeddedStore(Path({str(path)!r}))
        points = [Point(f"AQ-{{i}}", "air", "air_station", "鼓东街道", "s", {H0} + i, {{"pm25": float(i)}})
                  for i in range(500)]
        store.record(Batch(points=points), [], [CountRow({H0}, "AQ-0", "air", "stored", "", 500)])
        print("written", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, cwd=os.getcwd())
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"written"
        os.kill(proc.pid, signal.SIGKILL)  # no chance to close, checkpoint or flush anything
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    reopened = EmbeddedStore(path)
    try:
        rows = reopened.query_readings()
        assert len(rows) == 500 and rows[-1]["pm25"] == 499.0
        assert reopened.stats()["stored"] == 500
    finally:
        reopened.close()
