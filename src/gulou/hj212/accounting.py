"""The gateway's accounting: every packet ends in exactly one outcome, counted with its reason.

Invariant (checked by the tests): ``received = delivered + duplicate + rejected + control + ignored +
failed + in_flight``. Per station: packets, CRC variants and other tolerated deviations, the protocol
version, heartbeats, resends, clock offset, last peer and time seen (the station health of §8).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from gulou.timeutil import CHINA_TZ

Outcome = Literal["delivered", "duplicate", "rejected", "control", "ignored", "failed"]
OUTCOMES: tuple[Outcome, ...] = ("delivered", "duplicate", "rejected", "control", "ignored", "failed")


@dataclass
class StationHealth:
    """What the gateway knows about one MN's link."""

    packets: int = 0
    rejected: int = 0
    duplicates: int = 0
    heartbeats: int = 0
    version: int | None = None
    peer: str | None = None
    last_seen: datetime | None = None
    clock_offset_s: float | None = None
    notes: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (times in Beijing time)."""
        return {
            "packets": self.packets, "rejected": self.rejected, "resends": self.duplicates,
            "heartbeats": self.heartbeats, "version": self.version, "peer": self.peer,
            "last_seen": self.last_seen.astimezone(CHINA_TZ).isoformat(timespec="seconds") if self.last_seen else None,
            "clock_offset_s": self.clock_offset_s, "deviations": dict(self.notes),
        }


class Accounting:
    """Counters of one gateway process."""

    def __init__(self) -> None:
        self.received = 0
        self.closed = 0  # packets whose outcome is decided
        self.outcomes: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.failed_reasons: Counter[str] = Counter()
        self.by_cn: Counter[str] = Counter()
        self.replies: Counter[str] = Counter()
        self.connections: Counter[str] = Counter()
        self.splits: Counter[str] = Counter()
        self.noise_bytes = 0
        self.bytes_received = 0
        self.stations: dict[str, StationHealth] = {}
        self._log = RateLimitedLog(logging.getLogger("gulou.hj212"))

    def station(self, mn: str) -> StationHealth:
        """The health record of an MN (created on first sight)."""
        health = self.stations.get(mn)
        if health is None:
            health = self.stations[mn] = StationHealth()
        return health

    def outcome(self, outcome: Outcome, reason: str | None = None, mn: str | None = None) -> None:
        """Close one received packet's account."""
        self.outcomes[outcome] += 1
        self.closed += 1
        if outcome == "rejected" and reason:
            self.reasons[reason] += 1
            self._log.warning(reason, "hj212 packet rejected: %s (MN %s)", reason, mn)
            if mn is not None and mn in self.stations:
                self.stations[mn].rejected += 1
        elif outcome == "failed" and reason:
            self.failed_reasons[reason] += 1
            self._log.warning("failed:" + reason, "hj212 packet not acknowledged: downstream %s", reason)
        elif outcome == "duplicate" and mn is not None:
            self.station(mn).duplicates += 1

    @property
    def in_flight(self) -> int:
        """Packets received whose outcome is not decided yet."""
        return self.received - self.closed

    def snapshot(self, open_connections: int = 0) -> dict[str, Any]:
        """Everything as plain data (``gulou hj212`` prints it, ``gulou stats`` will read it)."""
        return {
            "packets": {"received": self.received, **{o: self.outcomes[o] for o in OUTCOMES},
                        "in_flight": self.in_flight},
            "by_reason": dict(self.reasons),
            "failed_by_reason": dict(self.failed_reasons),
            "by_cn": dict(self.by_cn),
            "replies": dict(self.replies),
            "splits": dict(self.splits),
            "connections": {"open": open_connections, **dict(self.connections)},
            "bytes": {"received": self.bytes_received, "noise": self.noise_bytes},
            "stations": {mn: h.as_dict() for mn, h in sorted(self.stations.items())},
        }


class RateLimitedLog:
    """At most one log line per key per interval, with the count of the ones held back."""

    def __init__(self, logger: logging.Logger, interval_s: float = 60.0) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self._last: dict[str, float] = {}
        self._held: Counter[str] = Counter()

    def warning(self, key: str, message: str, *args: object) -> None:
        """Log now, or count it until the key's interval has passed."""
        now = time.monotonic()
        if now - self._last.get(key, -self.interval_s) < self.interval_s:
            self._held[key] += 1
            return
        held = self._held.pop(key, 0)
        self._last[key] = now
        if held:
            self.logger.warning(message + " (and %d more like it since the last report)", *args, held)
        else:
            self.logger.warning(message, *args)
