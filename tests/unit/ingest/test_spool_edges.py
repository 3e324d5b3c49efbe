"""The spool's edges: exact bounds, segment sizing, sequence numbers across restarts, crash leftovers, and what the
DurableWriter reports (errors, outages, health lines)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from gulou.ingest.spool import CURSOR_FILE, DurableWriter, Spool, SpoolFull, encode_batch
from gulou.tsdb.records import Batch, Point
from tests.unit.ingest.test_spool import FlakySink, batch, drain, number

MIB = 1024 * 1024


def record_size(b: Batch) -> int:
    """Bytes one spooled record of ``b`` takes while sequence numbers have one digit."""
    body = encode_batch(b)
    return len(b"1 00000000 %d " % len(b)) + len(body) + 1


def segment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.spool"))


def test_records_are_compact_utf8_json() -> None:
    body = encode_batch(batch(1))
    # Non-ASCII text is kept as UTF-8 (an escaped street name would take three times the spool bytes).
    assert "鼓东街道".encode() in body
    assert b"\\u" not in body and b", " not in body and b": " not in body


@pytest.mark.parametrize(("max_bytes", "segment"), [
    (100_000, 64 * 1024),  # small bounds: never below 64 KiB
    (8 * MIB + 7, MIB),  # an eighth of the bound, whole bytes
    (2 * 1024 * MIB, 64 * MIB),  # large bounds: never above 64 MiB
])
def test_default_segment_size(tmp_path: Path, max_bytes: int, segment: int) -> None:
    spool = Spool(tmp_path, max_bytes)
    assert spool.segment_bytes == segment and isinstance(spool.segment_bytes, int)


def test_spool_directory_is_created_with_its_parents(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "a" / "b", MIB)
    spool.append(batch(0))
    assert len(segment_files(tmp_path / "a" / "b")) == 1


def test_a_record_that_exactly_fills_the_bound_is_accepted(tmp_path: Path) -> None:
    size = record_size(batch(0))
    spool = Spool(tmp_path, size)
    assert spool.append(batch(0)) == 1
    assert spool.bytes_used == size and spool.fill_ratio == 1.0
    with pytest.raises(SpoolFull, match="full"):
        spool.append(batch(0))


def test_segments_hold_records_up_to_exactly_their_size(tmp_path: Path) -> None:
    size = record_size(batch(0))
    spool = Spool(tmp_path, MIB, segment_bytes=2 * size)
    for _ in range(6):
        spool.append(batch(0))  # same size while sequence numbers keep one digit
    files = segment_files(tmp_path)
    assert [f.stat().st_size for f in files] == [2 * size] * 3
    assert spool.bytes_used == sum(f.stat().st_size for f in files)


def test_bytes_used_is_the_size_on_disk(tmp_path: Path) -> None:
    spool = Spool(tmp_path, MIB, segment_bytes=1000)
    for n in range(7):
        spool.append(batch(n))
    assert spool.bytes_used == sum(f.stat().st_size for f in segment_files(tmp_path))


def test_sequence_numbers_continue_after_a_full_drain_and_a_restart(tmp_path: Path) -> None:
    spool = Spool(tmp_path, MIB)
    assert [spool.append(batch(n)) for n in range(3)] == [1, 2, 3]
    assert drain(spool) == [0, 1, 2]
    assert spool.append(batch(3)) == 4
    assert drain(spool) == [3]
    assert Spool(tmp_path, MIB).append(batch(4)) == 5


def test_reopen_without_any_replay_keeps_every_batch(tmp_path: Path) -> None:
    spool = Spool(tmp_path, MIB)
    for n in range(3):
        spool.append(batch(n))
    assert not (tmp_path / CURSOR_FILE).exists()
    reopened = Spool(tmp_path, MIB)
    assert reopened.depth == 3 and drain(reopened) == [0, 1, 2]


def test_an_empty_cursor_file_means_nothing_replayed(tmp_path: Path) -> None:
    spool = Spool(tmp_path, MIB)
    spool.append(batch(0))
    (tmp_path / CURSOR_FILE).write_text("")
    assert drain(Spool(tmp_path, MIB)) == [0]


def test_an_unreadable_cursor_replays_everything_again(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = Spool(tmp_path, MIB)  # one segment: the replayed record is still on disk
    for n in range(4):
        spool.append(batch(n))
    head = spool.peek()
    assert head is not None
    spool.pop(head[0])
    (tmp_path / CURSOR_FILE).write_text("garbage\n")
    with caplog.at_level(logging.ERROR):
        reopened = Spool(tmp_path, MIB)
    assert "unreadable" in caplog.text
    assert drain(reopened) == [0, 1, 2, 3]


def test_a_clean_spool_opens_without_warnings(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = Spool(tmp_path, MIB, segment_bytes=1000)
    for n in range(5):
        spool.append(batch(n))
    with caplog.at_level(logging.WARNING):
        assert Spool(tmp_path, MIB, segment_bytes=1000).depth == 5
    assert caplog.records == []


def test_damage_before_the_newest_segment_is_named_as_such(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = Spool(tmp_path, MIB, segment_bytes=record_size(batch(0)))
    for n in range(3):
        spool.append(batch(n))
    first, _, last = segment_files(tmp_path)
    first.write_bytes(first.read_bytes()[:-10] + b"XXXXXXXXX\n")
    last.write_bytes(last.read_bytes()[:20])
    with caplog.at_level(logging.WARNING):
        reopened = Spool(tmp_path, MIB)
    damaged = [r.getMessage() for r in caplog.records if ": damaged records after byte" in r.getMessage()]
    torn = [r.getMessage() for r in caplog.records if ": torn last record after byte" in r.getMessage()]
    assert len(damaged) == 1 and first.name in damaged[0]
    assert len(torn) == 1 and last.name in torn[0]
    assert drain(reopened) == [1]


def test_a_replayed_segment_left_by_a_crash_does_not_hide_later_ones(tmp_path: Path) -> None:
    spool = Spool(tmp_path, MIB, segment_bytes=2 * record_size(batch(1)))
    for n in range(4):
        spool.append(batch(n))
    first = segment_files(tmp_path)[0]
    kept = first.read_bytes()
    for _ in range(2):
        head = spool.peek()
        assert head is not None
        spool.pop(head[0])
    first.write_bytes(kept)  # the unlink after the cursor write never happened
    reopened = Spool(tmp_path, MIB, segment_bytes=2 * record_size(batch(1)))
    assert not first.exists() and reopened.depth == 2
    assert drain(reopened) == [2, 3]


def test_an_empty_segment_between_others_is_removed(tmp_path: Path) -> None:
    spool = Spool(tmp_path, MIB, segment_bytes=2 * record_size(batch(1)))
    for n in range(4):
        spool.append(batch(n))
    first, second = segment_files(tmp_path)
    empty = tmp_path / f"{2:020d}.spool"
    empty.touch()
    assert segment_files(tmp_path) == [first, empty, second]
    reopened = Spool(tmp_path, MIB)
    assert not empty.exists() and reopened.depth == 4
    assert drain(reopened) == [0, 1, 2, 3]


@pytest.mark.parametrize("replayed", [True, False])
def test_an_empty_newest_segment_from_a_crash_is_used(tmp_path: Path, replayed: bool) -> None:
    """A crash right after a new segment file was created leaves it empty; appends continue into it."""
    spool = Spool(tmp_path, MIB, segment_bytes=100)  # every record is bigger than a segment
    spool.append(batch(0))
    if replayed:
        assert drain(spool) == [0]
    empty = tmp_path / f"{2:020d}.spool"
    empty.touch()
    reopened = Spool(tmp_path, MIB, segment_bytes=100)
    assert reopened.depth == (0 if replayed else 1)
    assert reopened.append(batch(1)) == 2
    assert empty.stat().st_size > 0 and len(segment_files(tmp_path)) == (1 if replayed else 2)
    assert drain(reopened) == ([1] if replayed else [0, 1])


def test_a_new_segment_does_not_move_the_read_position(tmp_path: Path) -> None:
    spool = Spool(tmp_path, MIB, segment_bytes=2 * record_size(batch(1)))
    spool.append(batch(0))
    spool.append(batch(1))
    head = spool.peek()
    assert head is not None
    spool.pop(head[0])
    spool.append(batch(2))  # opens a second segment while the first is half read
    assert len(segment_files(tmp_path)) == 2
    assert drain(spool) == [1, 2]


def test_text_with_spaces_survives_the_record_format(tmp_path: Path) -> None:
    spaced = Batch(points=[Point("AQ-1", "air", "air_station", "鼓东 街道", "site with spaces", 1_790_000_000_000,
                                 {"pm25": 12.5}, 3, {"note": "a b c"})])
    spool = Spool(tmp_path, MIB)
    spool.append(spaced)
    reopened = Spool(tmp_path, MIB)
    assert reopened.depth == 1
    head = reopened.peek()
    assert head is not None and head[1] == spaced


def test_a_record_changed_under_the_reader_is_an_error(tmp_path: Path) -> None:
    spool = Spool(tmp_path, MIB)
    spool.append(batch(0))
    [segment] = segment_files(tmp_path)
    segment.write_bytes(segment.read_bytes().replace(b"pm25", b"pm26"))
    with pytest.raises(RuntimeError, match="changed on disk"):
        spool.peek()


def test_pop_on_an_empty_spool_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="empty"):
        Spool(tmp_path, MIB).pop(1)


# -- the DurableWriter ---------------------------------------------------------------------------------------


def test_retry_delays_start_at_one_second_and_stop_at_thirty(tmp_path: Path) -> None:
    sink = FlakySink()
    writer = DurableWriter(sink, Spool(tmp_path, MIB))
    assert writer.last_error is None and writer.last_outage is None and writer.outage_started is None
    sink.down = True
    writer.write(batch(0))
    assert writer.last_error == "connection refused"
    assert writer._backoff.delay == 2.0  # the first wait was drawn from 1 s, the next from 2 s
    for _ in range(10):
        writer._next_attempt = 0.0  # as if each backoff had elapsed
        writer.replay()
    assert writer._backoff.delay == 30.0
    assert writer.last_error == "connection refused"


def test_each_outage_is_counted_once(tmp_path: Path) -> None:
    sink = FlakySink()
    writer = DurableWriter(sink, Spool(tmp_path, MIB), retry_initial_s=0)
    for outage in (1, 2):
        sink.down = True
        writer.write(batch(outage))
        writer.write(batch(outage))
        assert writer.replay() == 0 and writer.outages == outage
        sink.down = False
        assert writer.replay() == 2 and writer.outage_started is None


def test_replay_moves_at_most_a_hundred_batches_per_call(tmp_path: Path) -> None:
    sink = FlakySink()
    writer = DurableWriter(sink, Spool(tmp_path, 10 * MIB), retry_initial_s=0)
    sink.down = True
    for n in range(130):
        writer.write(batch(n, size=1))
    sink.down = False
    assert writer.replay() == 100 and writer.replay() == 30


def test_a_restart_with_a_backlog_is_an_outage_until_replayed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sink = FlakySink()
    first = DurableWriter(sink, Spool(tmp_path, MIB), retry_initial_s=0)
    sink.down = True
    for n in range(3):
        first.write(batch(n))
    sink.down = False
    restarted = DurableWriter(sink, Spool(tmp_path, MIB), retry_initial_s=0)
    started = restarted.outage_started
    assert started is not None
    with caplog.at_level(logging.INFO):
        assert restarted.replay() == 3
    assert "replayed 3 batches (9 records)" in caplog.text
    assert restarted.last_outage is not None and restarted.last_outage[0] == started


def test_refused_batches_reach_on_rejected_with_the_refusal(tmp_path: Path) -> None:
    sink = FlakySink()
    seen: list[tuple[int, str]] = []
    writer = DurableWriter(sink, Spool(tmp_path, MIB), on_rejected=lambda b, e: seen.append((number(b), str(e))),
                           retry_initial_s=0)
    sink.down = True
    writer.write(batch(5))
    sink.down, sink.refuse = False, {5}
    assert writer.replay() == 1
    assert seen == [(5, "HTTP 400: bad data")]


class LineSink(FlakySink):
    """A sink that also takes ready-made lines."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def write_lines(self, lines: list[str]) -> None:
        self.lines.extend(lines)


def test_health_line_defaults_and_overrides(tmp_path: Path) -> None:
    sink = LineSink()
    writer = DurableWriter(sink, Spool(tmp_path, MIB), retry_initial_s=0)
    before = int(time.time() * 1000)
    writer.write_health({"received": 5})
    after = int(time.time() * 1000)
    [line] = sink.lines
    head, ts = line.rsplit(" ", 1)
    assert head == ("pipeline_health received=5i,stored=0i,rejected=0i,spooled=0i,reconnects=0i,spool_bytes=0i,"
                    "deadletters=0i,msgs_per_s=0.0")
    assert before <= int(ts) <= after
    writer.write_health({"collector": "c", "rejected": 1, "deadletters": 7, "spool": {"bytes": 123}})
    assert sink.lines[1].startswith("pipeline_health,collector=c ")
    assert "spool_bytes=123i" in sink.lines[1] and "deadletters=7i" in sink.lines[1]


def test_no_health_line_during_an_outage_nor_for_sinks_without_lines(tmp_path: Path) -> None:
    sink = LineSink()
    writer = DurableWriter(sink, Spool(tmp_path / "a", MIB), retry_initial_s=0)
    sink.down = True
    writer.write(batch(0))
    writer.write_health({"received": 1})
    assert sink.lines == []
    plain = DurableWriter(FlakySink(), Spool(tmp_path / "b", MIB))
    plain.write_health({"received": 1})  # nothing to write to, and no error


# -- one process per spool, and a full disk --------------------------------------------------------------------


def test_a_spool_directory_serves_one_process_at_a_time(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from gulou.ingest.spool import LOCK_FILE, SpoolLocked

    # Another process holds the spool until its standard input closes.
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from gulou.ingest.spool import Spool; "
         f"s = Spool({str(tmp_path)!r}, 1 << 20); print('held', flush=True); sys.stdin.read(); s.close()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        assert (tmp_path / LOCK_FILE).read_text() == str(holder.pid)
        assert (tmp_path / LOCK_FILE).stat().st_mode & 0o777 == 0o600  # only its owner may touch it
        with pytest.raises(SpoolLocked) as taken:
            Spool(tmp_path, MIB)
        assert str(taken.value) == (f"spool {tmp_path} is in use by another collector process (pid {holder.pid}); "
                                    "each collector needs its own client id and spool directory")
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
    mine = Spool(tmp_path, MIB)
    assert (tmp_path / LOCK_FILE).read_text() == str(os.getpid())
    mine.append(batch(0))
    assert drain(mine) == [0]
    mine.close()
    mine.close()  # closing twice is harmless: no other descriptor of this process is touched
    os.fstat(1)
    fresh = Spool(tmp_path / "fresh", MIB)
    assert (tmp_path / "fresh" / LOCK_FILE).stat().st_mode & 0o777 == 0o600
    fresh.close()


def test_a_full_disk_is_a_full_spool_and_leaves_no_torn_record(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import os
    import stat

    real_fsync = os.fsync
    failure: list[int] = []

    def fsync(fd: int) -> None:
        if failure and stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(failure[0], os.strerror(failure[0]))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    for segment_bytes in (MIB, 100):  # into the open segment, and into a new one (every record needs its own)
        directory = tmp_path / str(segment_bytes)
        spool = Spool(directory, MIB, segment_bytes=segment_bytes)
        spool.append(batch(0))
        size = sum(f.stat().st_size for f in segment_files(directory))
        for code in (errno.ENOSPC, errno.EDQUOT):
            failure[:] = [code]
            with pytest.raises(SpoolFull) as full:
                spool.append(batch(1))
            assert full.value.reason == "disk full" and str(full.value).startswith(f"spool {directory}: disk full")
            # The half-written record was cut off again.
            assert sum(f.stat().st_size for f in segment_files(directory)) == size and spool.depth == 1
        failure[:] = [errno.EIO]
        with pytest.raises(OSError) as broken:
            spool.append(batch(1))
        assert not isinstance(broken.value, SpoolFull) and broken.value.errno == errno.EIO
        failure.clear()
        assert spool.append(batch(2)) == 2  # the failed appends used no sequence number
        assert drain(spool) == [0, 2]
        spool.close()
    assert SpoolFull("x").reason == "limit reached"
