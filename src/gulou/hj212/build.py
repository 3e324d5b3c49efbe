"""Packet builders: the platform's replies (9014, 9013, 9011/9012, 1011/1012 time) and station uploads.

Replies follow reference §5.1 and pitfall 14: echo the request's QN, ST=91, the station's PW and MN,
Flag = the station's version bits with A=0 and D=0, empty ``CP=&&&&``. Fault options (swapped or
MODBUS CRC, length +6, lower-case CRC, no CR LF) exist for the simulator and the tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from gulou.hj212.crc import CrcVariant, crc_value
from gulou.hj212.segment import Packet
from gulou.timeutil import CHINA_TZ

REPLY_ST = "91"


def frame(
    segment: bytes | str,
    *,
    variant: CrcVariant = "standard",
    length_offset: int = 0,
    lower_hex: bool = False,
    crlf: bool = True,
) -> bytes:
    """``##`` + 4-digit length + segment + CRC + CR LF; the options reproduce faults seen in the field."""
    data = segment.encode("utf-8") if isinstance(segment, str) else segment
    crc = b"%04x" % crc_value(data, variant) if lower_hex else b"%04X" % crc_value(data, variant)
    return b"##%04d" % (len(data) + length_offset) + data + crc + (b"\r\n" if crlf else b"")


def segment(
    *,
    cn: str,
    mn: str,
    st: str | None,
    pw: str | None,
    flag: int | None,
    cp: str = "",
    qn: str | None = None,
    pnum: int | None = None,
    pno: int | None = None,
    backfill: bool = False,
) -> str:
    """A data segment with the fields in the standard's order; ``None`` fields are left out."""
    head = [("QN", qn), ("ST", st), ("CN", cn), ("PW", pw), ("MN", mn),
            ("Flag", None if flag is None else str(flag)),
            ("PNUM", None if pnum is None else str(pnum)), ("PNO", None if pno is None else str(pno)),
            ("RF", "1" if backfill else None)]
    return "".join(f"{k}={v};" for k, v in head if v is not None) + f"CP=&&{cp}&&"


def reply_flag(version: int) -> int:
    """Flag of a reply: the station's version bits, no ack requested, not split."""
    return (version & 0x3F) << 2


def _reply(to: Packet, cn: str, cp: str = "") -> bytes:
    return frame(segment(qn=to.qn, st=REPLY_ST, cn=cn, pw=to.pw, mn=to.mn, flag=reply_flag(to.version), cp=cp))


def data_response(to: Packet) -> bytes:
    """9014: the data answer to an upload whose Flag asked for one."""
    return _reply(to, "9014")


def notify_response(to: Packet) -> bytes:
    """9013: the answer to a notification, and to the HJ 212-2025 heartbeat 9015."""
    return _reply(to, "9013")


def request_response(to: Packet, qn_rtn: int = 1) -> bytes:
    """9011 with ``QnRtn`` (1 ready, 2 refused, 3 wrong PW, 4 wrong MN … 9 CRC error, 100 unknown)."""
    return _reply(to, "9011", f"QnRtn={qn_rtn}")


def execution_result(to: Packet, exe_rtn: int = 1) -> bytes:
    """9012 with ``ExeRtn`` (1 success, 2 failed, 3 condition error … 100 no data)."""
    return _reply(to, "9012", f"ExeRtn={exe_rtn}")


def stamp(moment: datetime) -> str:
    """``YYYYMMDDhhmmss`` in Beijing time."""
    return moment.astimezone(CHINA_TZ).strftime("%Y%m%d%H%M%S")


def new_qn(moment: datetime) -> str:
    """``YYYYMMDDhhmmsszzz`` request number in Beijing time."""
    local = moment.astimezone(CHINA_TZ)
    return local.strftime("%Y%m%d%H%M%S") + f"{local.microsecond // 1000:03d}"


def host_request(*, cn: str, mn: str, st: str | None, pw: str | None, version: int, moment: datetime,
                 cp: str = "") -> bytes:
    """A platform request to a station (Flag with A=1): the station answers 9011, acts, then 9012."""
    return frame(segment(qn=new_qn(moment), st=st, cn=cn, pw=pw, mn=mn, flag=reply_flag(version) | 1, cp=cp))


def get_time(*, mn: str, st: str | None, pw: str | None, version: int, moment: datetime) -> bytes:
    """1011: ask the station for its clock; it uploads ``SystemTime`` in a 1011 packet."""
    return host_request(cn="1011", mn=mn, st=st, pw=pw, version=version, moment=moment)


def set_time(*, mn: str, st: str | None, pw: str | None, version: int, moment: datetime) -> bytes:
    """1012: set the station's clock to ``moment`` (Beijing time)."""
    return host_request(cn="1012", mn=mn, st=st, pw=pw, version=version, moment=moment,
                        cp=f"SystemTime={stamp(moment)}")


def data_area(
    moment: datetime | None,
    values: Mapping[str, Mapping[str, str]],
    fields: Iterable[tuple[str, str]] = (),
) -> str:
    """``DataTime=…;code-Suffix=v,code-Flag=N;…`` from per-code suffix values, in the given order."""
    parts = [f"{k}={v}" for k, v in fields]
    if moment is not None:
        parts.insert(0, f"DataTime={stamp(moment)}")
    for code, suffixes in values.items():
        parts.append(",".join(f"{code}-{suffix}={value}" for suffix, value in suffixes.items()))
    return ";".join(parts)
