"""HJ 212 station simulator, the encoding half: contract values → the packets a data logger sends.

A ``StationEncoder`` speaks for one configured station (its MN, password, system code and code table,
converting back to the units the station is configured to send). ``FaultPlan`` picks the faults seen in
the field (reference §1.3, §7): swapped or MODBUS CRC, length +6, lower-case CRC, no CR LF, TCP-split
packets, PNUM/PNO split messages, oversized unsplit segments and lost 9014s (the station resends).
``Aggregator`` turns real-time values into minute and hourly means as a logger does.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from gulou.hj212 import build
from gulou.hj212.convert import PeriodKind, period_bounds
from gulou.hj212.crc import CrcVariant
from gulou.hj212.sm4 import encrypt_area
from gulou.hj212.stations import StationConfig
from gulou.timeutil import CHINA_TZ

FaultKind = Literal["swapped_crc", "modbus_crc", "plus6", "lower_crc", "no_crlf", "tcp_split", "pnum_split",
                    "oversized", "lost_ack"]
FAULTS: tuple[FaultKind, ...] = ("swapped_crc", "modbus_crc", "plus6", "lower_crc", "no_crlf", "tcp_split",
                                 "pnum_split", "oversized", "lost_ack")
CN_OF: dict[PeriodKind, str] = {"rtd": "2011", "minute": "2051", "hour": "2061", "day": "2031"}
# A long log line in Chinese: what makes real segments exceed 1024 bytes without being split.
_LOG_TEXT = "设备运行正常，采样泵流量稳定，零点漂移在允许范围内；"


@dataclass(frozen=True)
class Outgoing:
    """One packet to send, with what the sender needs to know about it."""

    data: bytes
    qn: str
    wants_ack: bool
    faults: tuple[FaultKind, ...] = ()
    pieces: int = 1  # >1: written in that many TCP segments


@dataclass
class FaultPlan:
    """Which faults each packet carries: fixed per station, or drawn with the given rates."""

    rates: Mapping[FaultKind, float] = field(default_factory=dict)
    always: frozenset[FaultKind] = frozenset()
    seed: int = 0
    counts: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        unknown = (set(self.rates) | set(self.always)) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown HJ 212 faults {sorted(unknown)}; known: {', '.join(FAULTS)}")
        self._rng = random.Random(f"hj212-faults:{self.seed}")

    def draw(self) -> frozenset[FaultKind]:
        """The faults of the next packet."""
        chosen = set(self.always)
        for kind, rate in self.rates.items():
            if self._rng.random() < rate:
                chosen.add(kind)
        if "swapped_crc" in chosen and "modbus_crc" in chosen:
            chosen.discard("modbus_crc")
        self.counts.update(chosen)
        return frozenset(chosen)


class StationEncoder:
    """Builds one station's packets: real-time, minute, hourly and daily data, heartbeats, answers."""

    def __init__(self, station: StationConfig, password: str | None, *, version: int = 1,
                 sm4_key: bytes | None = None, decimals: Mapping[str, int] | None = None) -> None:
        self.station = station
        self.password = password
        self.version = version
        self.sm4_key = sm4_key
        self.decimals = dict(decimals or {})
        self._codes: dict[str, tuple[str, float]] = {}
        for code, entry in station.resolved().items():
            self._codes.setdefault(entry.metric, (code, entry.factor))
        self._qn_last = ""

    def qn(self, moment: datetime) -> str:
        """A request number unique on this station even for packets built in the same millisecond."""
        qn = build.new_qn(moment)
        if qn <= self._qn_last:
            qn = str(int(self._qn_last) + 1)
        self._qn_last = qn
        return qn

    def flag(self, ack: bool = True, split: bool = False) -> int:
        """Flag with this station's version bits."""
        return (self.version << 2) | (2 if split else 0) | (1 if ack else 0)

    def _number(self, metric: str, value: float, factor: float) -> str:
        raw = value / factor
        places = self.decimals.get(metric, 3)
        if factor < 1:
            places = max(0, places - 3)  # ng/m³ figures are a thousand times larger
        return f"{raw:.{places}f}"

    def items(self, kind: PeriodKind, values: Mapping[str, float | tuple[float, float, float]],
              flags: Mapping[str, str]) -> dict[str, dict[str, str]]:
        """Per code: ``Rtd`` (real time) or ``Min``/``Avg``/``Max`` (periods) and ``Flag``."""
        out: dict[str, dict[str, str]] = {}
        for metric, value in values.items():
            if metric not in self._codes:
                continue
            code, factor = self._codes[metric]
            if kind == "rtd":
                number = value[1] if isinstance(value, tuple) else value
                entry = {"Rtd": self._number(metric, number, factor)}
            else:
                low, mean, high = value if isinstance(value, tuple) else (value, value, value)
                entry = {"Min": self._number(metric, low, factor), "Avg": self._number(metric, mean, factor),
                         "Max": self._number(metric, high, factor)}
            entry["Flag"] = flags.get(metric, "N")
            out[code] = entry
        return out

    def data(self, kind: PeriodKind, moment: datetime, values: Mapping[str, float | tuple[float, float, float]],
             flags: Mapping[str, str] | None = None, faults: frozenset[FaultKind] = frozenset(),
             sent_at: datetime | None = None, backfill: bool = False) -> list[Outgoing]:
        """The packets of one real-time or period upload; two when the ``pnum_split`` fault is drawn."""
        items = self.items(kind, values, flags or {})
        extra: list[tuple[str, str]] = []
        if "oversized" in faults:
            extra.append(("i11001-Info", "//" + _LOG_TEXT * 14 + "//"))
        groups = [items]
        if "pnum_split" in faults and len(items) > 1:
            codes = list(items)
            half = len(codes) // 2
            groups = [{c: items[c] for c in codes[:half]}, {c: items[c] for c in codes[half:]}]
        out = []
        for pno, group in enumerate(groups, start=1):
            area = build.data_area(moment, group, [])
            if extra and pno == len(groups):
                area += ";" + ";".join(f"{k}={v}" for k, v in extra)
            split = len(groups) > 1
            out.append(self._packet(CN_OF[kind], area, faults, sent_at or moment, split=split,
                                    pnum=len(groups) if split else None, pno=pno if split else None,
                                    backfill=backfill))
        return out

    def heartbeat(self, moment: datetime, faults: frozenset[FaultKind] = frozenset()) -> Outgoing:
        """9015, the link heartbeat (HJ 212-2025; common before it), answered with 9013."""
        return self._packet("9015", "", faults, moment)

    def time_upload(self, moment: datetime, clock: datetime) -> Outgoing:
        """1011 upload of the logger's clock, sent while answering a 1011 request (no ack asked)."""
        return self._packet("1011", f"SystemTime={build.stamp(clock)}", frozenset(), moment, ack=False)

    def _packet(self, cn: str, area: str, faults: frozenset[FaultKind], moment: datetime, *, ack: bool = True,
                split: bool = False, pnum: int | None = None, pno: int | None = None,
                backfill: bool = False) -> Outgoing:
        qn = self.qn(moment)
        text = build.segment(qn=qn, st=self.station.system_code, cn=cn, pw=self.password, mn=self.station.mn,
                             flag=self.flag(ack, split), cp=area, pnum=pnum, pno=pno, backfill=backfill)
        segment = text.encode("utf-8")
        variant: CrcVariant = ("standard_swapped" if "swapped_crc" in faults
                               else "modbus_swapped" if "modbus_crc" in faults else "standard")
        data = build.frame(segment, variant=variant, length_offset=6 if "plus6" in faults else 0,
                           lower_hex="lower_crc" in faults, crlf="no_crlf" not in faults)
        if self.sm4_key is not None and cn.startswith("2") and area:
            data = self._encrypt(segment, variant, data)
        pieces = 3 if "tcp_split" in faults else 1
        return Outgoing(data, qn, ack, tuple(sorted(faults)), pieces)

    def _encrypt(self, segment: bytes, variant: CrcVariant, plain_frame: bytes) -> bytes:
        """Encrypt the data area, keeping the plaintext's CRC (HJ 212-2025 appendix A.2)."""
        head, _, rest = segment.partition(b"CP=&&")
        cipher = head + b"CP=&&" + encrypt_area(rest[:-2], self.sm4_key or b"") + b"&&"
        crc = plain_frame[6 + len(segment):6 + len(segment) + 4]
        tail = plain_frame[6 + len(segment) + 4:]
        return b"##%04d" % len(cipher) + cipher + crc + tail


@dataclass
class _Window:
    start: datetime
    samples: dict[str, list[float]] = field(default_factory=dict)
    flags: dict[str, Counter[str]] = field(default_factory=dict)


class Aggregator:
    """Minute and hourly means of one station's real-time values, emitted when a period closes."""

    def __init__(self, minute_interval_min: int) -> None:
        self.minutes = minute_interval_min
        self._open: dict[PeriodKind, _Window] = {}

    def add(self, moment: datetime, values: Mapping[str, float], flags: Mapping[str, str]
            ) -> list[tuple[PeriodKind, datetime, dict[str, tuple[float, float, float]], dict[str, str]]]:
        """Feed one real-time reading (Beijing time); return the periods it closed."""
        local = moment.astimezone(CHINA_TZ)
        closed = []
        for kind in ("minute", "hour"):
            start, _ = period_bounds(local, kind, self.minutes)
            window = self._open.get(kind)
            if window is not None and window.start != start:
                closed.append(self._close(kind, window))
                window = None
            if window is None:
                window = self._open[kind] = _Window(start)
            for metric, value in values.items():
                window.samples.setdefault(metric, []).append(value)
                window.flags.setdefault(metric, Counter())[flags.get(metric, "N")] += 1
        return closed

    @staticmethod
    def _close(kind: PeriodKind, window: _Window
               ) -> tuple[PeriodKind, datetime, dict[str, tuple[float, float, float]], dict[str, str]]:
        stats: dict[str, tuple[float, float, float]] = {}
        flags: dict[str, str] = {}
        for metric, samples in window.samples.items():
            stats[metric] = (min(samples), sum(samples) / len(samples), max(samples))
            counted = window.flags[metric]
            total = sum(counted.values())
            # A period is normal when at least 75 % of its values were (the flue-gas rule of S17 C.18).
            if counted["N"] >= 0.75 * total:
                flags[metric] = "N"
            else:
                flags[metric] = max((f for f in counted if f != "N"), key=lambda f: counted[f])
        return kind, window.start, stats, flags


def calibrating(moment: datetime, hour: int = 2, minutes: int = 15) -> bool:
    """Whether the station's daily zero/span check is running (gas analysers flag their values C)."""
    local = moment.astimezone(CHINA_TZ)
    return local.hour == hour and local.minute < minutes

