"""A cache of station daily air values per complete month, so daily reports need not reread the year.

A month's entry is a parquet file named by the month, the number of air readings the store holds for it and
the air stations of the registry: a late reading or a changed registry gives another name, and the entry is
computed again. The cache is an optimisation only; any failure to read or write it is logged and ignored.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import polars as pl

log = logging.getLogger(__name__)

VERSION = 1  # bump when the daily frame's columns or rules change


class DailyCache:
    """Station daily values per month in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _name(self, month: date, readings: int, stations: Sequence[str]) -> str:
        digest = hashlib.sha256("\n".join(sorted(stations)).encode()).hexdigest()[:12]
        return f"air-daily-v{VERSION}-{month:%Y-%m}-{readings}-{digest}.parquet"

    def get(self, month: date, readings: int, stations: Sequence[str]) -> pl.DataFrame | None:
        """The cached daily values of a month, or None when absent or stale."""
        path = self.directory / self._name(month, readings, stations)
        if not path.is_file():
            return None
        try:
            return pl.read_parquet(path)
        except (OSError, pl.exceptions.PolarsError) as exc:
            log.warning("report cache %s unreadable, recomputing: %s", path, exc)
            return None

    def put(self, month: date, readings: int, stations: Sequence[str], daily: pl.DataFrame) -> None:
        """Store a month's daily values, replacing older entries of the same month."""
        path = self.directory / self._name(month, readings, stations)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            for old in self.directory.glob(f"air-daily-v*-{month:%Y-%m}-*.parquet"):
                old.unlink(missing_ok=True)
            temporary = path.with_suffix(".tmp")
            daily.write_parquet(temporary)
            temporary.replace(path)
        except OSError as exc:
            log.warning("report cache %s not written: %s", path, exc)
