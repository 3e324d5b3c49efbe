"""Real-time (2011), minute (2051), hourly (2061) and daily (2031) data → device-contract readings.

``DataTime`` is read in the station's zone (Beijing by default; HJ 212 carries none). For minute, hourly
and daily data it is the start of the period (S17 table 4), so the reading's ``ts`` is the period start,
floored to the period's boundary (real packets stamp hours with stray seconds), and ``period_end`` is
explicit. Each value keeps its raw data flag and whether the station counts that flag as valid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from gulou.hj212.segment import DataArea, Packet
from gulou.hj212.stations import Resolved, StationConfig

PeriodKind = Literal["rtd", "minute", "hour", "day"]
DATA_CNS: dict[str, PeriodKind] = {"2011": "rtd", "2051": "minute", "2061": "hour", "2031": "day"}
_SUFFIX: dict[PeriodKind, str] = {"rtd": "Rtd", "minute": "Avg", "hour": "Avg", "day": "Avg"}
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
ConvertReason = Literal["missing_datatime", "bad_datatime", "future_timestamp", "bad_value", "out_of_range",
                        "no_metrics"]


@dataclass(frozen=True, slots=True)
class ConvertError:
    """Why a data packet's content cannot become a reading."""

    reason: ConvertReason
    detail: str


@dataclass(frozen=True, slots=True)
class StationReading:
    """One station's values for one moment or period, ready for the device contract."""

    device_id: str
    domain: str
    mn: str
    cn: str
    period: PeriodKind
    ts: datetime  # acquisition moment (rtd) or period start, aware
    period_end: datetime | None
    values: dict[str, float]
    flags: dict[str, str]  # raw flag letter per metric; "" when the packet had none
    valid: dict[str, bool]
    backfill: bool = False
    qn: str | None = None
    station_kind: str = "evaluation"
    dropped: dict[str, str] = field(default_factory=dict)  # metric → why its value was left out
    unmapped: tuple[str, ...] = ()  # codes the station's table does not map

    @property
    def topic(self) -> str:
        """The contract's telemetry topic for this reading's device."""
        return f"gulou/{self.domain}/{self.device_id}/telemetry"

    def published(self, extended: bool = True) -> dict[str, float]:
        """The values a payload carries.

        Extended: every value with a flag letter (the collector files it by the letter) and the valid ones
        without (a station reading a missing flag as N). A value with no letter that the station does not
        count as valid cannot say so in the contract and is left out. Plain: only valid values, so that a
        collector that knows no flags never averages a calibration or maintenance value.
        """
        if extended:
            return {m: v for m, v in self.values.items() if is_letter(self.flags.get(m, "")) or self.valid.get(m)}
        return {m: v for m, v in self.values.items() if self.valid.get(m)}

    def payload(self, extended: bool = True) -> dict[str, Any]:
        """The contract JSON object; ``extended`` adds ``period``, ``flags`` and ``backfill``."""
        body: dict[str, Any] = {"ts": self.ts.isoformat()}
        if extended:
            body["period"] = self.period
            flags = {m: f for m, f in self.flags.items() if is_letter(f)}
            if flags:
                body["flags"] = flags
            if self.backfill:
                body["backfill"] = True
        body.update(self.published(extended))
        return body


def is_letter(flag: str) -> bool:
    """Whether a flag is one letter, as the contract carries it (a vendor's longer code is not)."""
    return len(flag) == 1 and "A" <= flag <= "Z"


def parse_datatime(text: str, station: StationConfig) -> datetime | None:
    """``YYYYMMDDhhmmss`` (or 17 digits with milliseconds) in the station's zone, or ``None``."""
    if not text.isdigit() or len(text) not in (14, 17):
        return None
    try:
        # Slicing beats strptime several times over, and this runs for every data packet.
        return datetime(int(text[0:4]), int(text[4:6]), int(text[6:8]), int(text[8:10]), int(text[10:12]),
                        int(text[12:14]), int(text[14:] or 0) * 1000, tzinfo=station.zone)
    except ValueError:
        return None


def period_bounds(start: datetime, kind: PeriodKind, minutes: int) -> tuple[datetime, datetime | None]:
    """The period's start floored to its boundary, and its end (``None`` for real-time values)."""
    if kind == "rtd":
        return start, None
    if kind == "minute":
        floor = start.replace(minute=start.minute - start.minute % minutes, second=0, microsecond=0)
        return floor, floor + timedelta(minutes=minutes)
    if kind == "hour":
        floor = start.replace(minute=0, second=0, microsecond=0)
        return floor, floor + timedelta(hours=1)
    floor = start.replace(hour=0, minute=0, second=0, microsecond=0)
    # A calendar day in the station's zone (no DST in China; arithmetic on local wall time anyway).
    return floor, (floor.replace(tzinfo=None) + timedelta(days=1)).replace(tzinfo=floor.tzinfo)


def to_reading(
    packet: Packet,
    area: DataArea,
    station: StationConfig,
    codes: dict[str, Resolved],
    now: datetime,
    max_future: timedelta = timedelta(minutes=10),
) -> StationReading | ConvertError:
    """Convert one data packet; the whole packet is refused when a valid-flagged value is bad."""
    kind = DATA_CNS[packet.cn]
    text = area.fields.get("DataTime")
    if not text:
        return ConvertError("missing_datatime", "no DataTime: the values cannot be placed in time")
    moment = parse_datatime(text, station)
    if moment is None or moment < EARLIEST:
        return ConvertError("bad_datatime", f"DataTime {text[:20]!r} is not a time YYYYMMDDhhmmss after 2000")
    if moment - now > max_future:
        ahead, allowed = (moment - now).total_seconds(), max_future.total_seconds()
        return ConvertError("future_timestamp",
                            f"DataTime {text} is {ahead:.0f} s ahead of the receive time (allowed {allowed:.0f} s)")
    start, end = period_bounds(moment, kind, station.minute_interval_min)
    suffix = _SUFFIX[kind]
    values: dict[str, float] = {}
    flags: dict[str, str] = {}
    valid: dict[str, bool] = {}
    dropped: dict[str, str] = {}
    unmapped: list[str] = []
    problems: list[str] = []
    for code, item in area.items.items():
        if suffix not in item:
            continue
        entry = codes.get(code)
        if entry is None:
            unmapped.append(code)
            continue
        flag = item.get("Flag", "").strip().upper()
        ok = flag in station.valid_flags if flag else station.missing_flag == "N"
        raw = item[suffix]
        try:
            number = float(raw)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            if ok:
                problems.append(f"{code}-{suffix}={raw[:20]!r} is not a finite number")
            else:
                dropped[entry.metric] = "bad_value"
                flags[entry.metric] = flag
            continue
        # 12 significant digits: 28900 ng/m³ is 28.9 µg/m³, not 28.900000000000002.
        value = float(f"{number * entry.factor:.12g}") if entry.factor != 1.0 else number
        if (entry.minimum is not None and value < entry.minimum) or (
                entry.maximum is not None and value > entry.maximum):
            if ok:
                problems.append(f"{code} → {entry.metric} {value:g} outside {entry.minimum}..{entry.maximum}")
            else:
                # Not a measurement (flag says calibrating, stopped…): keep the flag, leave the number out.
                dropped[entry.metric] = "out_of_range"
                flags[entry.metric] = flag
            continue
        values[entry.metric] = value
        flags[entry.metric] = flag
        valid[entry.metric] = ok
    if problems:
        reason: ConvertReason = "bad_value" if "finite" in problems[0] else "out_of_range"
        return ConvertError(reason, "; ".join(problems))
    if not values:
        detail = f"no mapped {suffix} value" + (f" (unmapped codes: {', '.join(unmapped)})" if unmapped else "")
        return ConvertError("no_metrics", detail)
    return StationReading(
        device_id=station.device_id, domain=station.domain, mn=packet.mn, cn=packet.cn, period=kind, ts=start,
        period_end=end, values=values, flags=flags, valid=valid, backfill=packet.backfill, qn=packet.qn,
        station_kind=station.kind, dropped=dropped, unmapped=tuple(unmapped),
    )


def merge(first: StationReading, later: StationReading) -> StationReading:
    """Join the parts of a PNUM/PNO split message (same station, CN and DataTime)."""
    return StationReading(
        device_id=first.device_id, domain=first.domain, mn=first.mn, cn=first.cn, period=first.period,
        ts=first.ts, period_end=first.period_end, values={**first.values, **later.values},
        flags={**first.flags, **later.flags}, valid={**first.valid, **later.valid},
        backfill=first.backfill or later.backfill, qn=later.qn, station_kind=first.station_kind,
        dropped={**first.dropped, **later.dropped}, unmapped=tuple(dict.fromkeys(first.unmapped + later.unmapped)),
    )
