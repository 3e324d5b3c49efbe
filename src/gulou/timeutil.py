"""China Standard Time (Beijing time, UTC+8, no daylight saving) and epoch-millisecond conversions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

# The standards define days and hours in Beijing time; people read Beijing time on every screen.
CHINA_TZ = timezone(timedelta(hours=8), "CST")
# Its IANA name, for tools that take a zone by name (polars, Grafana, InfluxQL's tz()).
CHINA_TZ_NAME = "Asia/Shanghai"


def china_date(at: date | datetime) -> date:
    """The calendar date in China of an aware datetime (a naive one is taken as China time; a date as is)."""
    if isinstance(at, datetime):
        return (at if at.tzinfo is None else at.astimezone(CHINA_TZ)).date()
    return at


def to_ms(moment: datetime) -> int:
    """Epoch milliseconds of an aware datetime."""
    return int(moment.timestamp() * 1000)


def from_ms(ts_ms: int) -> datetime:
    """Aware UTC datetime of epoch milliseconds."""
    return datetime.fromtimestamp(ts_ms / 1000, UTC)


def beijing(ts: datetime | int) -> str:
    """Beijing time with its offset, to the second, for people: ``2026-03-01T08:00:00+08:00``."""
    moment = from_ms(ts) if isinstance(ts, int) else ts
    return moment.astimezone(CHINA_TZ).isoformat(timespec="seconds")
