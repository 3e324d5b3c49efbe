"""Station readings in the stores: period in the key, flags and invalid values kept, sources counted."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from gulou.sinks.embedded import SCHEMA_VERSION, CountRow, EmbeddedStore
from gulou.tsdb.line_protocol import line_protocol
from gulou.tsdb.records import Batch, DeadLetter, Point

H0 = 1_790_002_800_000  # an hour boundary (2026-09-21T15:00:00Z)


def station(period: str = "rtd", pm25: float = 35.0, **extra: object) -> Point:
    return Point("aq-001", "air", "air_station", "鼓东街道", "air-gd-01", H0, {"pm25": pm25, "no2": 30.0}, None,
                 {}, period, **extra)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    s = EmbeddedStore(tmp_path / "gulou.db")
    yield s
    s.close()


def test_an_hourly_mean_does_not_overwrite_the_real_time_reading_of_the_same_moment(store: EmbeddedStore) -> None:
    store.write(Batch(points=[station("rtd", 35.0), station("hour", 41.5), station("day", 38.0)]))
    store.write(Batch(points=[station("hour", 42.0)]))  # the hour sent again, corrected
    assert [r["pm25"] for r in store.query_readings("air")] == [35.0]
    assert "period" not in store.query_readings("air")[0]
    assert [(r["period"], r["pm25"]) for r in store.query_readings("air", period="hour")] == [("hour", 42.0)]
    assert [r.get("period", "rtd") for r in store.query_readings("air", period=None)] == ["day", "hour", "rtd"]


def test_flags_invalid_values_and_backfill_come_back(store: EmbeddedStore) -> None:
    store.write(Batch(points=[station("minute", flags={"pm25": "N", "so2": "C"}, invalid={"so2": 9.0},
                                      backfill=True)]))
    [row] = store.query_readings("air", period="minute")
    assert row["pm25"] == 35.0 and row["pm25_flag"] == "N"
    # The calibration value is kept, under its own name, never as "so2" (which figures read).
    assert "so2" not in row and row["so2_invalid"] == 9.0 and row["so2_flag"] == "C"
    assert row["backfill"] is True and row["period"] == "minute"


def test_line_protocol_tags_the_period_and_writes_flags_as_string_fields() -> None:
    plain, hourly = line_protocol(Batch(points=[
        station(), station("hour", flags={"pm25": "N", "so2": "C"}, invalid={"so2": 9.0}, backfill=True)]))
    assert plain == ("air,device=aq-001,site=air-gd-01,street=鼓东街道,type=air_station "
                     f"pm25=35.0,no2=30.0 {H0}")
    assert hourly == ("air,device=aq-001,period=hour,site=air-gd-01,street=鼓东街道,type=air_station "
                      f'pm25=35.0,no2=30.0,so2_invalid=9.0,pm25_flag="N",so2_flag="C",backfill=true {H0}')


def test_stats_by_source_and_station_dead_letters(store: EmbeddedStore) -> None:
    store.record(Batch(points=[station()]), [
        DeadLetter("gulou/deadletters/hj212", b"##0000garbage\r\n", "bad_crc", "CRC mismatch", H0, "aq-001", "air",
                   source="hj212", mn="350102A001"),
        DeadLetter("gulou/air/x/telemetry", b"{", "malformed_json", "bad", H0),
    ], [
        CountRow(H0, "aq-001", "air", "received", n=2, source="hj212"),
        CountRow(H0, "aq-001", "air", "stored", n=1, source="hj212"),
        CountRow(H0, "aq-001", "air", "rejected", "bad_crc", n=1, source="hj212"),
        CountRow(H0, "", "", "received", n=1),
        CountRow(H0, "", "", "rejected", "malformed_json", n=1),
    ])
    stats = store.stats()
    assert stats["by_source"] == {"hj212": {"received": 2, "stored": 1, "rejected": 1},
                                  "mqtt": {"received": 1, "stored": 0, "rejected": 1}}
    assert (stats["received"], stats["stored"], stats["rejected"]) == (3, 1, 2)
    [letter] = store.deadletters(source="hj212")
    assert (letter["mn"], letter["reason"], letter["source"]) == ("350102A001", "bad_crc", "hj212")
    assert letter["payload"] == "##0000garbage\r\n"
    assert [d["source"] for d in store.deadletters()] == ["mqtt", "hj212"]


def test_a_version_1_store_is_migrated_with_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE readings (device_id TEXT NOT NULL, ts_ms INTEGER NOT NULL, domain TEXT NOT NULL,
            type TEXT NOT NULL, street TEXT NOT NULL, site TEXT NOT NULL, seq INTEGER, tags TEXT NOT NULL,
            vals TEXT NOT NULL, PRIMARY KEY (ts_ms, device_id)) WITHOUT ROWID;
        CREATE INDEX readings_device ON readings (device_id, ts_ms);
        CREATE TABLE statuses (device_id TEXT NOT NULL, ts_ms INTEGER NOT NULL, domain TEXT NOT NULL,
            street TEXT NOT NULL, site TEXT NOT NULL, online INTEGER NOT NULL, battery REAL, rssi REAL,
            PRIMARY KEY (device_id, ts_ms)) WITHOUT ROWID;
        CREATE TABLE deadletters (id INTEGER PRIMARY KEY, received_ms INTEGER NOT NULL, topic TEXT NOT NULL,
            payload BLOB NOT NULL, reason TEXT NOT NULL, detail TEXT NOT NULL, device_id TEXT, domain TEXT);
        CREATE TABLE counts (hour_ms INTEGER NOT NULL, device_id TEXT NOT NULL, domain TEXT NOT NULL,
            outcome TEXT NOT NULL, reason TEXT NOT NULL, n INTEGER NOT NULL,
            PRIMARY KEY (hour_ms, device_id, domain, outcome, reason)) WITHOUT ROWID;
        CREATE TABLE health (collector_id TEXT PRIMARY KEY, updated_ms INTEGER NOT NULL, health TEXT NOT NULL);
        PRAGMA user_version = 1;
    """)
    db.execute("INSERT INTO readings VALUES ('aq-001', ?, 'air', 'air_station', '鼓东街道', 'air-gd-01', 7, '',"
               " '{\"pm25\":12.5}')", (H0,))
    db.execute("INSERT INTO counts VALUES (?, 'aq-001', 'air', 'stored', '', 1)", (H0,))
    db.execute("INSERT INTO deadletters VALUES (1, ?, 't', x'7b', 'malformed_json', 'd', NULL, NULL)", (H0,))
    db.commit()
    db.close()
    store = EmbeddedStore(path)
    try:
        assert store._version() == SCHEMA_VERSION == 2
        assert [(r["pm25"], r["seq"]) for r in store.query_readings("air")] == [(12.5, 7)]
        assert store.stats()["by_source"] == {"mqtt": {"received": 0, "stored": 1, "rejected": 0}}
        assert store.deadletters()[0]["source"] == "mqtt"
        # The migrated key takes a station's hourly mean next to the old real-time row.
        store.write(Batch(points=[station("hour", 40.0)]))
        assert len(store.query_readings("air", period=None)) == 2
    finally:
        store.close()


def test_reports_read_real_time_values_that_count(store: EmbeddedStore) -> None:
    from datetime import UTC, datetime, timedelta

    from gulou.reports.source import StoreSource

    store.write(Batch(points=[station("rtd", 35.0, flags={"pm25": "N", "so2": "C"}, invalid={"so2": 9.0}),
                              station("hour", 41.5)]))
    since = datetime.fromtimestamp(H0 / 1000, UTC)
    with StoreSource(store.path) as source:
        frame = source.readings("air", since, since + timedelta(hours=1), ["pm25", "so2"])
        assert frame["pm25"].to_list() == [35.0] and frame["so2"].to_list() == [None]
        assert source.count("air", since, since + timedelta(hours=1)) == 1
        assert source.counts(since, since + timedelta(hours=1)) == {"aq-001": 1}
