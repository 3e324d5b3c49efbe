"""The spool's limits beyond its byte bound: a full disk, and one directory per collector process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gulou.ingest.spool import SEGMENT_SUFFIX, Spool, SpoolFull, SpoolLocked
from gulou.tsdb.records import Batch, Point


def batch(n: int) -> Batch:
    return Batch(points=[Point(device_id="st-001-ne", domain="structure", type="structure_monitor", street="鼓东",
                               site="bldg-nj-01", ts_ms=1_700_000_000_000 + n, values={"vibration": 0.5})])


def test_a_full_disk_is_a_full_spool_and_leaves_no_torn_record(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20)
    spool.append(batch(1))
    [segment] = sorted(tmp_path.glob(f"*{SEGMENT_SUFFIX}"))
    kept = segment.read_bytes()
    # Writes to /dev/full fail with ENOSPC, as on a full disk.
    segment.rename(tmp_path / "kept")
    segment.symlink_to("/dev/full")
    with pytest.raises(SpoolFull) as info:
        spool.append(batch(2))
    assert info.value.reason == "disk full"
    assert spool.depth == 1
    segment.unlink()
    (tmp_path / "kept").rename(segment)
    assert segment.read_bytes() == kept
    spool.append(batch(3))  # room again: appends carry on without a restart
    assert spool.depth == 2


def test_a_spool_directory_belongs_to_one_process(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pathlib import Path; from gulou.ingest.spool import Spool;"
         f"s = Spool(Path({str(tmp_path)!r}), 1 << 20); print('locked', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(SpoolLocked, match=f"pid {holder.pid}"):
            Spool(tmp_path, 1 << 20)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)
    Spool(tmp_path, 1 << 20).close()  # free again once that process is gone
