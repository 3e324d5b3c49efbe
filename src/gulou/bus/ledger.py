"""The ids a collector gave the dead letters it published, so a broker's redelivery reuses them.

A valid reading's id comes from its content (device, time), so the stream drops a republished copy. A
rejected payload has no such identity: the same broken bytes from the same device are distinct messages,
so its id includes its arrival time, and a copy the broker resends after a collector died (stream ack
received, MQTT ack not) would get a new id and be counted twice. The broker resends with the original
packet id and the DUP flag, so the collector keeps, durably and before publishing, which id it gave each
(client id, packet id, payload) it dead-lettered, and a redelivered copy reuses it. Entries older than
the stream's duplicate window are useless (the stream no longer remembers the id) and are pruned.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS bus_dead_ids (
    delivery_key TEXT NOT NULL,  -- the source's redelivery key: MQTT client id and packet id
    digest BLOB NOT NULL,        -- topic and payload, hashed
    msg_id TEXT NOT NULL,        -- the id the dead letter was published with
    at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS bus_dead_ids_key ON bus_dead_ids (delivery_key, at_ms);
"""


def digest(topic: str, payload: bytes) -> bytes:
    """What must match besides the packet id: packet ids are reused once acknowledged."""
    return hashlib.blake2b(topic.encode() + b"\0" + payload, digest_size=16).digest()


class DeadLetterIds:
    """A small durable table of recent (redelivery key, digest) → published dead-letter id."""

    def __init__(self, path: Path, keep_s: float) -> None:
        self.path, self.keep_ms = path, int(keep_s * 1000)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA busy_timeout = 10000")
        self._db.execute("PRAGMA synchronous = FULL")  # the entry must survive the crash it is for
        self._db.executescript(SCHEMA)

    def recall(self, key: str, topic: str, payload: bytes, now_ms: int | None = None) -> str | None:
        """The id the newest matching entry was published with, if it is recent enough to matter."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        row = self._db.execute(
            "SELECT msg_id FROM bus_dead_ids WHERE delivery_key = ? AND at_ms >= ? AND digest = ?"
            " ORDER BY at_ms DESC LIMIT 1", (key, now_ms - self.keep_ms, digest(topic, payload))).fetchone()
        return None if row is None else str(row[0])

    def remember(self, entries: Iterable[tuple[str, str, bytes, str]], now_ms: int | None = None) -> None:
        """Keep (key, topic, payload, msg id) entries durably; drop those past the window."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        rows = [(key, digest(topic, payload), msg_id, now_ms) for key, topic, payload, msg_id in entries]
        if not rows:
            return
        with closing(self._db.cursor()) as cur:
            cur.execute("BEGIN IMMEDIATE")
            cur.executemany("INSERT INTO bus_dead_ids VALUES (?, ?, ?, ?)", rows)
            cur.execute("DELETE FROM bus_dead_ids WHERE at_ms < ?", (now_ms - self.keep_ms,))
            cur.execute("COMMIT")

    def close(self) -> None:
        """Close the connection."""
        self._db.close()
