"""Disk spool for batches a sink could not take, and the DurableWriter that spools and replays them."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gulou.backoff import Backoff
from gulou.tsdb.line_protocol import encode_line
from gulou.tsdb.records import Batch, Point, StatusEvent
from gulou.tsdb.writer import Sink, SinkError, SinkRejected

log = logging.getLogger(__name__)

SEGMENT_SUFFIX = ".spool"
CURSOR_FILE = "cursor"
LOCK_FILE = "lock"
# A full disk is a full spool: stop acknowledging and wait, rather than die and restart into the same wall.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class SpoolFull(Exception):
    """The spool takes nothing more (its byte bound, or a full disk): stop acknowledging, the broker keeps the
    messages."""

    def __init__(self, message: str, reason: str = "limit reached") -> None:
        super().__init__(message)
        self.reason = reason


class SpoolLocked(RuntimeError):
    """Another collector process has this spool directory: two writers would replay and ack each other's data."""


def encode_batch(batch: Batch) -> bytes:
    """A batch as compact JSON."""
    doc = {"p": [p.to_json() for p in batch.points], "s": [s.to_json() for s in batch.statuses]}
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def decode_batch(data: bytes) -> Batch:
    """The inverse of ``encode_batch``."""
    doc = json.loads(data)
    return Batch(points=[Point(**p) for p in doc["p"]], statuses=[StatusEvent(**s) for s in doc["s"]])


@dataclass
class _Segment:
    path: Path
    first: int  # sequence number of its first record
    last: int  # sequence number of its last record (first - 1 while empty)
    size: int


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """Append-only segment files of batches, one record per line: ``<seq> <crc32> <points> <json>``.

    Appends are fsynced before returning; the read position (last replayed sequence number) lives in a
    small ``cursor`` file replaced atomically. A torn last record from a crash fails its CRC and is cut
    off when the spool is opened.
    """

    def __init__(self, directory: Path, max_bytes: int, segment_bytes: int | None = None) -> None:
        self.directory = Path(directory)
        self.max_bytes = int(max_bytes)
        # Segments are the unit of deletion, so disk use shrinks in steps of at most an eighth of the bound.
        self.segment_bytes = segment_bytes or max(64 * 1024, min(64 * 1024 * 1024, self.max_bytes // 8))
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = self._take_directory()
        self._lock = threading.RLock()
        self._segments: list[_Segment] = []
        self._cursor = self._read_cursor()  # last popped sequence number
        self._read_offset = 0  # byte offset of the next pending record in the first segment
        self.depth = 0  # pending batches
        self.points = 0  # pending records (points + status events)
        self._open()

    # -- opening ---------------------------------------------------------------------------------------

    def _take_directory(self) -> int:
        """Lock the directory for this process (POSIX record lock: released when the process ends, even killed)."""
        fd = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise SpoolLocked(f"spool {self.directory} is in use by another collector process (pid {holder}); "
                              "each collector needs its own client id and spool directory") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        return fd

    def close(self) -> None:
        """Release the directory."""
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def _read_cursor(self) -> int:
        try:
            return int((self.directory / CURSOR_FILE).read_text().strip() or 0)
        except FileNotFoundError:
            return 0
        except ValueError:
            log.error("spool cursor in %s is unreadable; replaying every segment again", self.directory)
            return 0

    def _open(self) -> None:
        paths = sorted(self.directory.glob(f"*{SEGMENT_SUFFIX}"))
        for i, path in enumerate(paths):
            records, good_end, size = self._scan(path)
            if good_end < size:
                # Only the newest segment can have a torn tail; elsewhere it means damage, still cut it.
                where = "torn last record" if i == len(paths) - 1 else "damaged records"
                log.warning("spool %s: %s after byte %s of %s, truncating", path, where, good_end, size)
                with path.open("r+b") as f:
                    f.truncate(good_end)
                    os.fsync(f.fileno())
            first = int(path.stem)
            last = records[-1][0] if records else first - 1
            if records and last <= self._cursor:
                path.unlink()  # fully replayed before the crash; deletion did not happen yet
                continue
            for seq, offset, points in records:
                if seq > self._cursor:
                    if self.depth == 0 and not self._segments:
                        self._read_offset = offset
                    self.depth += 1
                    self.points += points
            if not records and i < len(paths) - 1:
                path.unlink()
                continue
            if not self._segments and self.depth == 0:
                self._read_offset = good_end
            self._segments.append(_Segment(path, first, last, good_end))

    @staticmethod
    def _scan(path: Path) -> tuple[list[tuple[int, int, int]], int, int]:
        """Valid records (seq, offset, points) up to the first bad one, the end of the good part, file size."""
        data = path.read_bytes()
        records: list[tuple[int, int, int]] = []
        offset = 0
        while offset < len(data):
            end = data.find(b"\n", offset)
            if end < 0:
                break
            parsed = _parse(data[offset:end])
            if parsed is None or (records and parsed[0] != records[-1][0] + 1):
                break
            records.append((parsed[0], offset, parsed[1]))
            offset = end + 1
        return records, offset, len(data)

    # -- properties ------------------------------------------------------------------------------------

    @property
    def bytes_used(self) -> int:
        """Bytes of segment files on disk (replayed records count until their segment is deleted)."""
        with self._lock:
            return sum(s.size for s in self._segments)

    @property
    def fill_ratio(self) -> float:
        """``bytes_used / max_bytes``."""
        return self.bytes_used / self.max_bytes if self.max_bytes else 1.0

    def __len__(self) -> int:
        return self.depth

    # -- writing and reading ---------------------------------------------------------------------------

    def append(self, batch: Batch) -> int:
        """Append a batch durably (fsynced) and return its sequence number; ``SpoolFull`` at the bound."""
        body = encode_batch(batch)
        with self._lock:
            seq = self._segments[-1].last + 1 if self._segments else self._cursor + 1
            record = b"%d %08x %d " % (seq, zlib.crc32(body), len(batch)) + body + b"\n"
            if self.bytes_used + len(record) > self.max_bytes:
                raise SpoolFull(f"spool {self.directory} is full ({self.bytes_used} of {self.max_bytes} bytes, "
                                f"{self.depth} batches pending)")
            segment = self._segments[-1] if self._segments else None
            try:
                if segment is None or (segment.size > 0 and segment.size + len(record) > self.segment_bytes):
                    segment = _Segment(self.directory / f"{seq:020d}{SEGMENT_SUFFIX}", seq, seq - 1, 0)
                    segment.path.touch()
                    _fsync_dir(self.directory)
                    if not self._segments:
                        self._read_offset = 0
                    self._segments.append(segment)
                self._write_record(segment, record)
            except OSError as exc:
                if exc.errno not in DISK_FULL:
                    raise
                raise SpoolFull(f"spool {self.directory}: disk full ({self.bytes_used} bytes spooled, "
                                f"{self.depth} batches pending)", reason="disk full") from None
            segment.last = seq
            segment.size += len(record)
            self.depth += 1
            self.points += len(batch)
            return seq

    @staticmethod
    def _write_record(segment: _Segment, record: bytes) -> None:
        """Append one record and fsync; a failed write (disk full) is cut off again, leaving no torn record."""
        with segment.path.open("ab") as f:
            try:
                f.write(record)
                f.flush()
                os.fsync(f.fileno())
            except OSError:
                with contextlib.suppress(OSError):
                    f.truncate(segment.size)
                raise

    def peek(self) -> tuple[int, Batch] | None:
        """The oldest pending batch with its id, or ``None`` when the spool is empty."""
        with self._lock:
            if not self.depth:
                return None
            segment, line, parsed = self._read_oldest()
            if parsed is None:
                raise RuntimeError(f"spool {segment.path}: record at byte {self._read_offset} changed on disk")
            return parsed[0], decode_batch(line.rstrip(b"\n").split(b" ", 3)[3])

    def _read_oldest(self) -> tuple[_Segment, bytes, tuple[int, int] | None]:
        """The oldest pending record: its segment, raw line and (seq, points), or None if it does not parse."""
        self._skip_consumed_segment()
        segment = self._segments[0]
        with segment.path.open("rb") as f:
            f.seek(self._read_offset)
            line = f.readline()
        return segment, line, _parse(line.rstrip(b"\n"))

    def pop(self, seq: int) -> None:
        """Mark the oldest batch replayed (durably); deletes segments that are fully replayed."""
        with self._lock:
            if not self.depth:
                raise ValueError("spool is empty")
            segment, line, parsed = self._read_oldest()
            if parsed is None or parsed[0] != seq:
                raise ValueError(f"spool: {seq} is not the oldest pending batch")
            self._write_cursor(seq)
            self._cursor = seq
            self._read_offset += len(line)
            self.depth -= 1
            self.points -= parsed[1]
            if seq == segment.last:
                # The segment is spent; any later record lives in the next one (or the next append opens one).
                segment.path.unlink()
                _fsync_dir(self.directory)
                self._segments.pop(0)
                self._read_offset = 0

    def _skip_consumed_segment(self) -> None:
        if self._segments and self._segments[0].last <= self._cursor and len(self._segments) > 1:
            self._segments[0].path.unlink()
            self._segments.pop(0)
            self._read_offset = 0

    def _write_cursor(self, seq: int) -> None:
        tmp = self.directory / (CURSOR_FILE + ".tmp")
        with tmp.open("w") as f:
            f.write(f"{seq}\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.directory / CURSOR_FILE)
        _fsync_dir(self.directory)


def _parse(line: bytes) -> tuple[int, int] | None:
    """(seq, points) of a record line whose CRC matches, else ``None``."""
    parts = line.split(b" ", 3)
    if len(parts) != 4:
        return None
    try:
        seq, crc, points = int(parts[0]), int(parts[1], 16), int(parts[2])
    except ValueError:
        return None
    return (seq, points) if zlib.crc32(parts[3]) == crc else None


class DurableWriter:
    """A sink with a spool in front: batches go to the sink, or to the spool while the sink is down."""

    def __init__(self, sink: Sink, spool: Spool, on_replayed: Callable[[Batch], None] | None = None,
                 on_rejected: Callable[[Batch, SinkRejected], None] | None = None,
                 retry_initial_s: float = 1.0, retry_max_s: float = 30.0) -> None:
        self.sink = sink
        self.spool = spool
        # After a failure, replay() waits (jittered, doubling) before trying the sink again, so a sink
        # that times out instead of refusing does not stall the caller's loop on every call.
        self._backoff = Backoff(retry_initial_s, retry_max_s)
        self._next_attempt = 0.0
        # Hooks for accounting: a replayed batch was stored late; a rejected one needs dead-lettering.
        self.on_replayed = on_replayed
        self.on_rejected = on_rejected
        self._lock = threading.RLock()
        self.outage_started: float | None = time.time() if spool.depth else None
        self.last_outage: tuple[float, float] | None = None
        self.last_error: str | None = None
        self.outages = 0
        self._replayed_batches = 0
        self._replayed_points = 0

    @property
    def pending(self) -> int:
        """Batches waiting in the spool."""
        return self.spool.depth

    def write(self, batch: Batch) -> Literal["stored", "spooled"]:
        """Store the batch, or spool it behind older ones; raises ``SpoolFull`` and ``SinkRejected``."""
        with self._lock:
            if self.spool.depth:
                # Never overtake spooled batches: order per device is preserved end to end.
                self.spool.append(batch)
                return "spooled"
            try:
                self.sink.write(batch)
            except SinkRejected:
                raise
            except SinkError as exc:
                self._failed(exc)
                self.spool.append(batch)
                return "spooled"
            return "stored"

    def replay(self, max_batches: int = 100) -> int:
        """Move up to ``max_batches`` spooled batches to the sink, oldest first; stops at the first failure.

        Returns at once (0) while backing off after a failure.
        """
        done = 0
        if time.monotonic() < self._next_attempt:
            return 0
        while done < max_batches:
            with self._lock:
                head = self.spool.peek()
                if head is None:
                    break
                seq, batch = head
                try:
                    self.sink.write(batch)
                except SinkRejected as exc:
                    log.error("%s refused spooled batch %s (%s records): %s", self.sink.name, seq, len(batch), exc)
                    if self.on_rejected is not None:
                        self.on_rejected(batch, exc)
                except SinkError as exc:
                    self._failed(exc)
                    break
                else:
                    self._backoff.reset()
                    if self.on_replayed is not None:
                        self.on_replayed(batch)
                self.spool.pop(seq)
                done += 1
                self._replayed_batches += 1
                self._replayed_points += len(batch)
                if not self.spool.depth:
                    self._recovered()
        return done

    def _failed(self, exc: SinkError) -> None:
        self.last_error = str(exc)
        self._next_attempt = time.monotonic() + self._backoff.next()
        if self.outage_started is None:
            self.outage_started = time.time()
            self.outages += 1
            self._replayed_batches = self._replayed_points = 0
            log.warning("%s write failed, spooling to %s until it recovers: %s", self.sink.name,
                        self.spool.directory, exc)
        else:
            log.debug("%s still failing: %s", self.sink.name, exc)

    def _recovered(self) -> None:
        self._backoff.reset()
        started = self.outage_started or time.time()
        self.last_outage = (started, time.time())
        self.outage_started = None
        log.info("%s recovered after %.1f s: replayed %s batches (%s records) from the spool", self.sink.name,
                 self.last_outage[1] - started, self._replayed_batches, self._replayed_points)
        self._replayed_batches = self._replayed_points = 0

    def write_health(self, health: dict[str, Any]) -> None:
        """Best effort: write a collector's health snapshot as a ``pipeline_health`` line, if the sink takes lines."""
        write_lines = getattr(self.sink, "write_lines", None)
        if write_lines is None or self.outage_started is not None:
            return
        spool = health.get("spool") or {}
        fields: dict[str, Any] = {k: int(health.get(k) or 0) for k in ("received", "stored", "rejected", "spooled",
                                                                        "reconnects")}
        fields["spool_bytes"] = int(spool.get("bytes", self.spool.bytes_used))
        fields["deadletters"] = int(health.get("deadletters", health.get("rejected")) or 0)
        fields["msgs_per_s"] = float(health.get("msgs_per_s") or 0.0)
        line = encode_line("pipeline_health", {"collector": str(health.get("collector", ""))}, fields,
                           int(time.time() * 1000))
        try:
            with self._lock:
                write_lines([line])
        except SinkError as exc:
            log.debug("pipeline_health not written: %s", exc)
