"""Readings for reports, read straight from the embedded store's SQLite file (read-only) into polars frames.

This is the only module of the reports that knows the store's table layout: ``readings`` keyed by
(ts_ms, device_id, period) with the metric values as a JSON object in ``vals`` (only values whose data flag
counts as valid). Reports read real-time readings (``period = 'rtd'``), not the stations' period means.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

log = logging.getLogger(__name__)

# Beijing wall-clock time: the standards define hours and days in it, and people read it.
ZONE = "Asia/Shanghai"
# Rows fetched from SQLite per round trip; bounds the memory of the Python row tuples.
FETCH_ROWS = 200_000


class StoreSource:
    """Read-only access to a store file: readings per domain and time range, and reading counts per device."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no store at {self.path}")
        uri = f"{self.path.resolve().as_uri()}?mode=ro"
        self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout = 10000")

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def __enter__(self) -> StoreSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def readings(self, domain: str, since: datetime, until: datetime, metrics: Sequence[str]) -> pl.DataFrame:
        """Readings of a domain in ``[since, until)``: device_id, site, street, ``local`` (naive Beijing), metrics."""
        schema = pl.Struct({m: pl.Float64 for m in metrics})
        chunks: list[pl.DataFrame] = []
        cursor = self._db.execute(
            "SELECT device_id, site, street, ts_ms, vals FROM readings"
            " WHERE domain = ? AND ts_ms >= ? AND ts_ms < ? AND period = 'rtd' ORDER BY ts_ms, device_id",
            (domain, _ms(since), _ms(until)))
        while rows := cursor.fetchmany(FETCH_ROWS):
            raw = pl.DataFrame(rows, schema={"device_id": pl.Utf8, "site": pl.Utf8, "street": pl.Utf8,
                                             "ts_ms": pl.Int64, "vals": pl.Utf8}, orient="row")
            chunks.append(raw.with_columns(pl.col("vals").str.json_decode(schema)).unnest("vals"))
        frame = pl.concat(chunks) if chunks else pl.DataFrame(
            schema={"device_id": pl.Utf8, "site": pl.Utf8, "street": pl.Utf8, "ts_ms": pl.Int64,
                    **{m: pl.Float64 for m in metrics}})
        log.debug("read %s %s readings from %s", frame.height, domain, self.path)
        return frame.with_columns(local_time(pl.col("ts_ms")).alias("local")).drop("ts_ms")

    def iter_readings(self, domain: str, since: datetime, until: datetime, metrics: Sequence[str],
                      step: timedelta = timedelta(days=7)) -> Iterator[pl.DataFrame]:
        """The same readings in consecutive slices of ``step`` (keep ``since`` and ``step`` on whole days)."""
        start = since
        while start < until:
            end = min(start + step, until)
            yield self.readings(domain, start, end, metrics)
            start = end

    def count(self, domain: str, since: datetime, until: datetime) -> int:
        """Stored readings of a domain in ``[since, until)``."""
        row = self._db.execute("SELECT COUNT(*) FROM readings WHERE domain = ? AND ts_ms >= ? AND ts_ms < ?"
                               " AND period = 'rtd'", (domain, _ms(since), _ms(until))).fetchone()
        return int(row[0])

    def counts(self, since: datetime, until: datetime) -> dict[str, int]:
        """Stored readings per device in ``[since, until)``."""
        rows = self._db.execute(
            "SELECT device_id, COUNT(*) FROM readings WHERE ts_ms >= ? AND ts_ms < ? AND period = 'rtd'"
            " GROUP BY device_id",
            (_ms(since), _ms(until))).fetchall()
        return {str(device): int(n) for device, n in rows}


def local_time(ms: pl.Expr) -> pl.Expr:
    """Epoch milliseconds as naive Beijing wall-clock datetimes."""
    return pl.from_epoch(ms, time_unit="ms").dt.replace_time_zone("UTC").dt.convert_time_zone(ZONE) \
        .dt.replace_time_zone(None)


def _ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError(f"aware datetime needed, got {moment!r}")
    return int(moment.timestamp() * 1000)
