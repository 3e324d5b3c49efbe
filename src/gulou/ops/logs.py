"""Logging for every command: a validated level, text in Beijing time or JSON lines, a quiet embedded broker,
and a throttle for messages a failure would otherwise repeat many times a second."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import IO, Any

from pythonjsonlogger.json import JsonFormatter

from gulou.timeutil import CHINA_TZ

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# The embedded broker (amqtt, and the state-machine library under it) logs every connection, subscription and
# state change at INFO: at fleet rates that buries everything else. They speak at WARNING unless DEBUG is asked.
CHATTY = ("amqtt", "transitions")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def parse_level(name: str) -> int:
    """The numeric level of ``DEBUG``/``INFO``/``WARNING``/``ERROR``/``CRITICAL`` (any case); anything else raises."""
    upper = name.strip().upper()
    if upper not in LEVELS:
        raise ValueError(f"log level {name!r}: use one of {', '.join(LEVELS)}")
    return int(logging.getLevelNamesMapping()[upper])


def _beijing(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, CHINA_TZ).isoformat(timespec="milliseconds")


class BeijingFormatter(logging.Formatter):
    """Text lines stamped in Beijing time with the offset (``2026-11-26T08:00:00.123+08:00``)."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """The record's time in Beijing time, ISO 8601 with offset."""
        return _beijing(record)


class BeijingJsonFormatter(JsonFormatter):
    """One JSON object per line: ``time`` (Beijing, with offset), ``level``, ``logger``, ``message``, extras."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s",
                         rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                         json_ensure_ascii=False)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """The record's time in Beijing time, ISO 8601 with offset."""
        return _beijing(record)


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler ``configure`` installs (so a second call replaces it)."""


def configure(level: str, json_lines: bool = False, stream: IO[str] | None = None, force: bool = False) -> None:
    """Set up the root logger on stderr (stdout stays clean for ``--json`` output); raises on a bad level.

    Like ``logging.basicConfig``, a root logger someone else already set up (a test harness, an embedding
    application) is left alone unless ``force``; the embedded broker is quietened either way.
    """
    numeric = parse_level(level)
    for name in CHATTY:
        logging.getLogger(name).setLevel(numeric if numeric <= logging.DEBUG else max(numeric, logging.WARNING))
    root = logging.getLogger()
    foreign = [h for h in root.handlers if not isinstance(h, _Handler)]
    if foreign and not force:
        return
    for old in list(root.handlers):
        root.removeHandler(old)
    handler = _Handler(stream if stream is not None else sys.stderr)
    handler.setFormatter(BeijingJsonFormatter() if json_lines else BeijingFormatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(numeric)


class Throttle:
    """Lets a repeated message through at most once per interval per key, and says how many it held back."""

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> int | None:
        """None to stay quiet; otherwise the number of messages held back since the last one let through."""
        now = self._clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval_s:
                self._held[key] = self._held.get(key, 0) + 1
                return None
            self._last[key] = now
            return self._held.pop(key, 0)

    def log(self, logger: logging.Logger, level: int, key: str, msg: str, *args: Any) -> None:
        """``logger.log`` unless the key spoke within the interval; adds how many repeats were held back."""
        held = self.allow(key)
        if held is None:
            return
        if held:
            logger.log(level, msg + " (%s more like this since the last report)", *args, held)
        else:
            logger.log(level, msg, *args)
