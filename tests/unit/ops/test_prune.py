"""Retention of dead letters and accounting on a real store file."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from gulou.app.prune import DAY_MS, prune_store
from gulou.cli import cli
from gulou.settings import LimitsSettings
from gulou.sinks.embedded import CountRow, EmbeddedStore
from gulou.tsdb.records import DeadLetter

NOW = 1_800_000_000_000
HOUR = 3_600_000


def letter(age_days: float, device: str = "fake-1") -> DeadLetter:
    received = NOW - int(age_days * DAY_MS)
    return DeadLetter("gulou/air/x/telemetry", b"{}", "unknown_device", "", received, device, "air")


def counts(store: EmbeddedStore, device: str, age_days: float, outcome: str, reason: str = "") -> None:
    hour = NOW - int(age_days * DAY_MS)
    store.add_counts([CountRow(hour - hour % HOUR, device, "air", outcome, reason, 1)])  # type: ignore[arg-type]


def test_retention_by_age_by_size_and_for_made_up_devices(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "gulou.db")
    store.add_deadletters([letter(40), letter(10), letter(5), letter(1), letter(0.5)])
    for device, outcome, reason in (("fake-1", "received", ""), ("fake-1", "rejected", "unknown_device"),
                                    ("aq-001", "received", ""), ("aq-001", "stored", ""),
                                    ("aq-001", "rejected", "unknown_device")):
        counts(store, device, 45, outcome, reason)
    counts(store, "aq-001", 500, "received")
    counts(store, "fake-2", 1, "rejected", "unknown_device")
    limits = LimitsSettings(deadletter_retention_days=30, deadletter_max_rows=3, counts_retention_days=400)
    deleted = prune_store(store, limits, now_ms=NOW)
    assert deleted == {"deadletters": 2, "counts": 3}
    assert len(store.deadletters()) == 3
    # The made-up id's old hours are gone; a real device keeps its hours (a mistaken id in one of them too).
    assert store.stats()["by_device"] == {"aq-001": {"received": 1, "stored": 1, "rejected": 1},
                                          "fake-2": {"received": 0, "stored": 0, "rejected": 1}}
    store.close()


def test_prune_command_refuses_a_missing_store(tmp_path: Path) -> None:
    missing = tmp_path / "none.db"
    result = CliRunner().invoke(cli, ["prune", "--store", str(missing)])
    assert result.exit_code != 0 and "no store" in result.output
    assert not missing.exists()
    EmbeddedStore(tmp_path / "g.db").close()
    result = CliRunner().invoke(cli, ["prune", "--store", str(tmp_path / "g.db"), "--json"])
    assert result.exit_code == 0, result.output
