"""Multi-row inserts store exactly what row-by-row inserts store, in order, whatever the number of rows."""

from __future__ import annotations

import sqlite3

import pytest

from gulou.sinks.embedded import _Insert


def _db() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
    db.execute("CREATE TABLE c (k TEXT PRIMARY KEY, n INTEGER NOT NULL)")
    return db


REPLACE = _Insert("INSERT OR REPLACE INTO t (k, v)", 2)
UPSERT = _Insert("INSERT INTO c (k, n)", 2, " ON CONFLICT (k) DO UPDATE SET n = n + excluded.n")


@pytest.mark.parametrize("count", [0, 1, 2, 255, 256, 257, 1000, 1023])
def test_every_row_is_stored_once_in_order(count: int) -> None:
    db = _db()
    # Keys repeat every 300 rows: the later row must win, as it would one by one.
    rows = [(n % 300, f"v{n}") for n in range(count)]
    REPLACE.run(db, rows)
    expected: dict[int, str] = {}
    for k, v in rows:
        expected[k] = v
    assert dict(db.execute("SELECT k, v FROM t").fetchall()) == expected


def test_upserts_within_one_statement_add_up() -> None:
    db = _db()
    UPSERT.run(db, [("a", 1), ("b", 2), ("a", 3)] * 100)
    UPSERT.run(db, [("a", 1)])
    assert dict(db.execute("SELECT k, n FROM c").fetchall()) == {"a": 401, "b": 200}


def test_a_bad_row_fails_the_statement() -> None:
    db = _db()
    with pytest.raises(sqlite3.IntegrityError):
        REPLACE.run(db, [(1, "x"), (2, None)])


def test_statements_come_in_a_few_sizes() -> None:
    db = _db()
    REPLACE.run(db, [(n, "v") for n in range(1000)])
    # 1000 = 3 x 256 + 128 + 64 + 32 + 8: five statement texts, whatever the batch sizes seen.
    assert set(REPLACE._sql) <= {256, 128, 64, 32, 16, 8, 4, 2, 1}
