"""The data segment: header fields (QN, ST, CN, PW, MN, Flag, PNUM, PNO, RF) and the CP data area.

Fields are read by name, not position (real packets put QN after CN or leave it out); only CN, MN and
CP are required (reference §2.1, pitfall 10). The data area is decoded as UTF-8 (the standard's
choice for Chinese text) with GB18030 (a superset of GBK) as the fallback loggers need (pitfall 8).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

SegmentReason = Literal["bad_header", "bad_cp", "bad_split"]
_CN = re.compile(r"^\d{4}$")
CP_MARK = b"CP=&&"
ENCRYPTED_MARK = b"{0x"
_SEPARATORS = frozenset(";, \t")


@dataclass(frozen=True, slots=True)
class SegmentError:
    """Why a data segment could not be read."""

    reason: SegmentReason
    detail: str
    mn: str | None = None


@dataclass(frozen=True, slots=True)
class DataArea:
    """The CP content: plain keys (``DataTime``, ``QnRtn``…) and ``code-Suffix`` items per code."""

    fields: dict[str, str] = field(default_factory=dict)
    items: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Packet:
    """A parsed data segment."""

    cn: str
    mn: str
    qn: str | None
    st: str | None
    pw: str | None
    flag: int | None
    pnum: int | None
    pno: int | None
    backfill: bool
    head: bytes  # everything before ``CP=&&``, byte-exact (replies and decryption reuse it)
    cp_raw: bytes
    cp_text: str
    encoding: Literal["utf-8", "gb18030"]
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def version(self) -> int:
        """Flag version bits: 0 = HJ/T 212-2005 (or no Flag), 1 = HJ 212-2017, 2 = HJ 212-2025."""
        return (self.flag or 0) >> 2

    @property
    def ack_requested(self) -> bool:
        """Flag bit A: the receiver must answer."""
        return bool((self.flag or 0) & 1)

    @property
    def split(self) -> bool:
        """Flag bit D: the message is one of PNUM parts."""
        return bool((self.flag or 0) & 2)

    @property
    def encrypted(self) -> bool:
        """Whether the data area is SM4 ciphertext written as ``{0x..,...}`` (HJ 212-2025)."""
        return self.cp_raw.startswith(ENCRYPTED_MARK)


def split_segment(segment: bytes) -> tuple[bytes, bytes] | None:
    """(head before ``CP=&&``, data area between ``CP=&&`` and the closing ``&&``), or ``None``."""
    at = segment.find(CP_MARK)
    if at < 0 or not segment.endswith(b"&&") or len(segment) < at + len(CP_MARK) + 2:
        return None
    return segment[:at], segment[at + len(CP_MARK):-2]


def peek_mn(segment: bytes) -> str | None:
    """The MN a segment claims, read without trusting anything else (for dead letters of bad packets)."""
    match = re.search(rb"(?:^|[;,])MN=([^;,&]{1,64})", segment)
    return match.group(1).decode("latin-1") if match else None


def parse_segment(segment: bytes) -> Packet | SegmentError:
    """Read a data segment; never raises on bad input."""
    parts = split_segment(segment)
    if parts is None:
        return SegmentError("bad_cp", "no CP=&&...&& data area at the end of the segment", peek_mn(segment))
    head, cp_raw = parts
    header: dict[str, str] = {}
    # Header values never contain ',' and the standard's own examples write ',ST=32': split on both.
    for item in re.split(r"[;,]", head.decode("latin-1")):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep:
            return SegmentError("bad_header", f"header item {item[:40]!r} has no '='", peek_mn(segment))
        header[key.strip()] = value.strip()
    mn = header.pop("MN", "")
    cn = header.pop("CN", "")
    if not mn:
        return SegmentError("bad_header", "no MN")
    if not _CN.match(cn):
        return SegmentError("bad_header", f"CN {cn!r} is not four digits", mn)
    flag = _int(header.pop("Flag", None))
    if flag is False or (isinstance(flag, int) and not 0 <= flag <= 255):
        return SegmentError("bad_header", "Flag is not an integer 0-255", mn)
    pnum, pno = _int(header.pop("PNUM", None)), _int(header.pop("PNO", None))
    if pnum is False or pno is False:
        return SegmentError("bad_split", "PNUM/PNO are not integers", mn)
    if (pnum is None) != (pno is None):
        return SegmentError("bad_split", "PNUM and PNO must come together", mn)
    if isinstance(flag, int) and flag & 2 and pnum is None:
        return SegmentError("bad_split", "Flag announces a split message but PNUM/PNO are missing", mn)
    if isinstance(pnum, int) and isinstance(pno, int) and not 1 <= pno <= pnum:
        return SegmentError("bad_split", f"PNO {pno} is not within 1..PNUM {pnum}", mn)
    text, encoding = decode_text(cp_raw)
    return Packet(
        cn=cn, mn=mn, qn=header.pop("QN", None), st=header.pop("ST", None), pw=header.pop("PW", None),
        flag=flag if isinstance(flag, int) else None, pnum=pnum or None, pno=pno or None,
        backfill=header.pop("RF", "") == "1", head=head, cp_raw=cp_raw, cp_text=text, encoding=encoding,
        extra=header,
    )


def _int(value: str | None) -> int | Literal[False] | None:
    """``None`` when absent, the integer, or ``False`` when present but not a non-negative integer."""
    if value is None:
        return None
    return int(value) if value.isdigit() and len(value) <= 9 else False


def decode_text(raw: bytes) -> tuple[str, Literal["utf-8", "gb18030"]]:
    """UTF-8 as the standard says; GB18030 (covers GBK and GB2312) for loggers that send those."""
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return raw.decode("gb18030", "replace"), "gb18030"


def _next_separator(text: str, start: int, limit: int) -> int:
    """Index of the first ';' or ',' in text[start:limit], or ``limit``."""
    semi = text.find(";", start, limit)
    comma = text.find(",", start, limit)
    if semi < 0:
        return limit if comma < 0 else comma
    return semi if comma < 0 or semi < comma else comma


def _pairs(text: str) -> list[tuple[str, str]] | SegmentError:
    """The data area's ``key=value`` pairs in order; empty items (a trailing ';', doubled separators) skipped."""
    pairs: list[tuple[str, str]] = []
    if "//" not in text:
        for group in text.split(";"):
            for piece in group.split(","):
                key, sep, value = piece.partition("=")
                if sep:
                    pairs.append((key.strip(), value.strip()))
                elif piece.strip():
                    return SegmentError("bad_cp", f"data item {piece.strip()[:40]!r} is not key=value")
        return pairs
    # Log text between '//' marks may hold ';' and ',': walk the text instead of splitting it.
    pos, size = 0, len(text)
    while pos < size:
        if text[pos] in _SEPARATORS:
            pos += 1
            continue
        eq = text.find("=", pos)
        cut = _next_separator(text, pos, eq if eq >= 0 else size)
        if eq < 0 or cut < eq:
            return SegmentError("bad_cp", f"data item {text[pos:cut][:40]!r} is not key=value")
        start = eq + 1
        close = text.find("//", start + 2) if text.startswith("//", start) else -1
        end = close + 2 if close >= 0 else _next_separator(text, start, size)
        pairs.append((text[pos:eq].strip(), text[start:end].strip()))
        pos = end
    return pairs


def parse_cp(text: str) -> DataArea | SegmentError:
    """Split the data area on ``;`` then ``,`` then the first ``=``, then the key on its first ``-``.

    Log text (``i11001-Info=//...//``) is taken whole between its ``//`` marks, since it may hold either
    separator.
    """
    pairs = _pairs(text)
    if isinstance(pairs, SegmentError):
        return pairs
    fields: dict[str, str] = {}
    items: dict[str, dict[str, str]] = {}
    for key, value in pairs:
        code, dash, suffix = key.partition("-")
        if dash:
            target = items.get(code)
            if target is None:
                target = items[code] = {}
            name = suffix
        else:
            target, name = fields, key
        if not name or not code:
            return SegmentError("bad_cp", f"data item {key[:40]!r}={value[:20]!r} has an empty key")
        if target.setdefault(name, value) != value:
            return SegmentError("bad_cp", f"{key} is given twice with different values")
    return DataArea(fields, items)
