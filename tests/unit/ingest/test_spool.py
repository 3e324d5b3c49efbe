"""The disk spool (order, bound, restarts, torn records) and the DurableWriter in front of a sink."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gulou.ingest.spool import DurableWriter, Spool, SpoolFull, encode_batch
from gulou.tsdb.records import Batch, Point, StatusEvent
from gulou.tsdb.writer import Sink, SinkError, SinkRejected

T0 = 1_790_000_000_000


def batch(n: int, size: int = 2) -> Batch:
    """A batch tagged with its number in seq and ts, so order can be checked."""
    points = [Point(f"AQ-{i}", "air", "air_station", "鼓东街道", "s", T0 + n, {"pm25": float(n), "lid": True}, n)
              for i in range(size)]
    return Batch(points=points, statuses=[StatusEvent("AQ-0", "air", "鼓东街道", "s", T0 + n, n % 2 == 0, 50.0)])


def number(b: Batch) -> int:
    return b.points[0].seq or 0


def drain(spool: Spool) -> list[int]:
    out = []
    while (head := spool.peek()) is not None:
        seq, b = head
        out.append(number(b))
        spool.pop(seq)
    return out


def test_batches_round_trip_exactly(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20)
    original = batch(7)
    spool.append(original)
    head = spool.peek()
    assert head is not None and head[1] == original
    assert spool.depth == 1 and spool.points == 3 and spool.bytes_used > 0
    assert 0 < spool.fill_ratio < 1 and spool.max_bytes == 1 << 20


def test_fifo_order_across_segments_and_segments_deleted(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20, segment_bytes=1000)
    for n in range(20):
        spool.append(batch(n))
    assert len(list(tmp_path.glob("*.spool"))) > 3
    assert drain(spool) == list(range(20))
    assert spool.depth == 0 and spool.points == 0 and spool.bytes_used == 0
    assert list(tmp_path.glob("*.spool")) == []
    spool.append(batch(20))  # sequence numbers continue after a full drain
    assert drain(spool) == [20]


def test_partial_replay_deletes_only_spent_segments(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20, segment_bytes=1000)
    for n in range(12):
        spool.append(batch(n))
    segments_before = len(list(tmp_path.glob("*.spool")))
    used_before = spool.bytes_used
    for _ in range(6):
        head = spool.peek()
        assert head is not None
        spool.pop(head[0])
    assert len(list(tmp_path.glob("*.spool"))) < segments_before
    assert spool.bytes_used < used_before
    assert drain(spool) == list(range(6, 12))


def test_pop_must_name_the_oldest(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20)
    spool.append(batch(1))
    second = spool.append(batch(2))
    with pytest.raises(ValueError, match="oldest"):
        spool.pop(second)


def test_bound_raises_spool_full_and_frees_after_replay(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 3000, segment_bytes=1000)
    appended = 0
    with pytest.raises(SpoolFull, match="full"):
        for n in range(100):
            spool.append(batch(n))
            appended += 1
    assert 0 < appended < 100
    assert spool.bytes_used <= 3000 and spool.depth == appended
    head = spool.peek()
    assert head is not None
    room = len(encode_batch(batch(100))) + 40  # the record's body and its header
    while spool.bytes_used + room > 3000:  # replay until a segment is deleted
        head = spool.peek()
        assert head is not None
        spool.pop(head[0])
    spool.append(batch(100))
    assert drain(spool)[-1] == 100


def test_reopen_after_restart_finds_pending_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20, segment_bytes=800)
    for n in range(10):
        spool.append(batch(n))
    for _ in range(4):
        head = spool.peek()
        assert head is not None
        spool.pop(head[0])
    del spool
    reopened = Spool(tmp_path, 1 << 20, segment_bytes=800)
    assert reopened.depth == 6 and reopened.points == 18
    reopened.append(batch(10))
    assert drain(reopened) == [4, 5, 6, 7, 8, 9, 10]
    assert Spool(tmp_path, 1 << 20).depth == 0


@pytest.mark.parametrize("damage", ["cut", "garbage", "bad_crc"])
def test_torn_last_record_is_truncated_on_open(tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture) -> None:
    spool = Spool(tmp_path, 1 << 20)
    for n in range(3):
        spool.append(batch(n))
    [segment] = tmp_path.glob("*.spool")
    data = segment.read_bytes()
    last_start = data.rstrip(b"\n").rfind(b"\n") + 1
    if damage == "cut":  # a crash mid-append
        segment.write_bytes(data[: last_start + 25])
    elif damage == "garbage":
        segment.write_bytes(data + b"\x00\x00\x00 half a rec")
    else:  # a complete-looking line whose body does not match its CRC
        segment.write_bytes(data[:-10] + b"XXXXXXXXX\n")
    with caplog.at_level(logging.WARNING):
        reopened = Spool(tmp_path, 1 << 20)
    assert "truncating" in caplog.text
    survivors = [0, 1, 2] if damage == "garbage" else [0, 1]
    assert reopened.depth == len(survivors)
    reopened.append(batch(9))  # appends continue cleanly after the cut
    assert drain(reopened) == [*survivors, 9]


def test_crash_between_cursor_and_segment_delete(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20)
    spool.append(batch(0))
    spool.append(batch(1))
    [segment] = tmp_path.glob("*.spool")
    kept = segment.read_bytes()
    assert drain(spool) == [0, 1]
    segment.write_bytes(kept)  # the file came back as if unlink never happened; the cursor says replayed
    reopened = Spool(tmp_path, 1 << 20)
    assert reopened.depth == 0 and list(tmp_path.glob("*.spool")) == []


class FlakySink(Sink):
    """Stores batches in memory; fails while ``down`` is set, refuses batches listed in ``refuse``."""

    name = "flaky"

    def __init__(self) -> None:
        self.stored: list[int] = []
        self.down = False
        self.refuse: set[int] = set()

    def write(self, batch: Batch) -> None:
        if self.down:
            raise SinkError("connection refused")
        if number(batch) in self.refuse:
            raise SinkRejected("HTTP 400: bad data")
        self.stored.append(number(batch))

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_durable_writer_stored_spooled_replayed_in_order(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sink = FlakySink()
    replayed: list[int] = []
    writer = DurableWriter(sink, Spool(tmp_path, 1 << 20), on_replayed=lambda b: replayed.append(number(b)),
                           retry_initial_s=0)
    assert writer.write(batch(0)) == "stored"
    sink.down = True
    with caplog.at_level(logging.INFO):
        assert writer.write(batch(1)) == "spooled"
        assert "spooling" in caplog.text
        assert writer.outage_started is not None and writer.outages == 1
        sink.down = False
        # The sink is back, but batch 2 must queue behind 1: never overtake spooled data.
        assert writer.write(batch(2)) == "spooled"
        assert writer.pending == 2 and sink.stored == [0]
        assert writer.replay(max_batches=1) == 1
        assert writer.write(batch(3)) == "spooled"
        assert writer.replay() == 2
    assert sink.stored == [0, 1, 2, 3] and replayed == [1, 2, 3]
    assert writer.pending == 0 and writer.outage_started is None and writer.last_outage is not None
    assert "recovered" in caplog.text and "replayed 3 batches (9 records)" in caplog.text
    assert writer.write(batch(4)) == "stored"


def test_replay_stops_at_next_failure_and_keeps_the_rest(tmp_path: Path) -> None:
    sink = FlakySink()
    writer = DurableWriter(sink, Spool(tmp_path, 1 << 20), retry_initial_s=0)
    sink.down = True
    for n in range(5):
        assert writer.write(batch(n)) == "spooled"
    assert writer.replay() == 0 and writer.pending == 5
    sink.down = False
    assert writer.replay(max_batches=2) == 2
    sink.down = True
    assert writer.replay() == 0 and writer.pending == 3
    sink.down = False
    restarted = DurableWriter(sink, Spool(tmp_path, 1 << 20), retry_initial_s=0)  # a new process finds the backlog
    assert restarted.pending == 3 and restarted.replay() == 3
    assert sink.stored == [0, 1, 2, 3, 4]


def test_rejected_batches_are_not_spooled(tmp_path: Path) -> None:
    sink = FlakySink()
    rejected: list[int] = []
    writer = DurableWriter(sink, Spool(tmp_path, 1 << 20), on_rejected=lambda b, e: rejected.append(number(b)),
                           retry_initial_s=0)
    sink.refuse = {1}
    with pytest.raises(SinkRejected):
        writer.write(batch(1))
    assert writer.pending == 0
    # Refused during replay: handed to on_rejected and dropped from the spool rather than retried forever.
    sink.down = True
    writer.write(batch(2))
    writer.write(batch(1))
    writer.write(batch(3))
    sink.down = False
    assert writer.replay() == 3
    assert sink.stored == [2, 3] and rejected == [1] and writer.pending == 0


def test_spool_full_propagates_from_writer(tmp_path: Path) -> None:
    sink = FlakySink()
    sink.down = True
    writer = DurableWriter(sink, Spool(tmp_path, 1500, segment_bytes=1000), retry_initial_s=0)
    with pytest.raises(SpoolFull):
        for n in range(50):
            writer.write(batch(n))
    sink.down = False
    depth = writer.pending
    assert writer.replay() == depth and sink.stored == list(range(depth))


def test_health_line_goes_to_sinks_that_take_lines(tmp_path: Path) -> None:
    class LineSink(FlakySink):
        def __init__(self) -> None:
            super().__init__()
            self.lines: list[str] = []

        def write_lines(self, lines: list[str]) -> None:
            self.lines.extend(lines)

    sink = LineSink()
    writer = DurableWriter(sink, Spool(tmp_path, 1 << 20), retry_initial_s=0)
    writer.write_health({"collector": "c 1", "received": 10, "stored": 9, "rejected": 1, "spooled": 0,
                         "reconnects": 2, "msgs_per_s": 3.5, "spool": {"bytes": 0}})
    [line] = sink.lines
    assert line.startswith("pipeline_health,collector=c\\ 1 received=10i,stored=9i,rejected=1i,spooled=0i,"
                           "reconnects=2i,spool_bytes=0i,deadletters=1i,msgs_per_s=3.5 ")


def test_replay_backs_off_after_a_failure(tmp_path: Path) -> None:
    sink = FlakySink()
    writer = DurableWriter(sink, Spool(tmp_path, 1 << 20), retry_initial_s=60)
    sink.down = True
    assert writer.write(batch(0)) == "spooled"
    sink.down = False
    # The sink is back, but the writer waits out its backoff instead of hammering a failing server.
    assert writer.replay() == 0 and writer.pending == 1 and sink.stored == []
    writer._next_attempt = 0.0  # the backoff elapsed
    assert writer.replay() == 1 and sink.stored == [0]
