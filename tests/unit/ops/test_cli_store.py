"""Commands that read the store: a missing store is reported (not created), people see Beijing time, CSV opens
in Excel with Chinese intact, and ``gulou ingest --help`` says it needs a broker."""

from __future__ import annotations

import codecs
import csv
import io
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from gulou.cli import cli
from gulou.sinks.embedded import EmbeddedStore
from gulou.tsdb.records import Batch, Point

TS = 1_764_547_200_000  # 2025-12-01T00:00:00Z = 08:00 in Beijing


def test_reading_a_missing_store_says_so(tmp_path: Path) -> None:
    missing = tmp_path / "none.db"
    for args in (["stats"], ["query", "--domain", "air"], ["deadletters"]):
        result = CliRunner().invoke(cli, [*args, "--store", str(missing)])
        assert result.exit_code == 1 and "no store at" in result.output, args
    assert not missing.exists()


def test_query_csv_for_excel_and_beijing_time(tmp_path: Path) -> None:
    path = tmp_path / "gulou.db"
    store = EmbeddedStore(path)
    store.write(Batch(points=[Point(device_id="st-001-ne", domain="structure", type="structure_monitor",
                                    street="鼓东街道", site="bldg-nj-01", ts_ms=TS, values={"vibration": 0.5})]))
    store.close()
    done = subprocess.run([sys.executable, "-m", "gulou", "query", "--domain", "structure", "--csv", "--store",
                           str(path)], capture_output=True, env={"PATH": "/usr/bin:/bin", "LANG": "C"}, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.startswith(codecs.BOM_UTF8) and b"\r\n" in done.stdout
    [row] = list(csv.DictReader(io.StringIO(done.stdout.decode("utf-8-sig"))))
    assert row["street"] == "鼓东街道"
    assert row["ts"] == "2025-12-01T08:00:00+08:00"
    text = CliRunner().invoke(cli, ["query", "--domain", "structure", "--store", str(path)])
    assert "ts=2025-12-01T08:00:00+08:00" in text.output


def test_ingest_help_tells_it_needs_a_broker() -> None:
    result = CliRunner().invoke(cli, ["ingest", "--help"])
    assert "Required" in result.output and "embedded broker" in result.output
