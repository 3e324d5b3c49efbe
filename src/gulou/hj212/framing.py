"""Stream framing: ``##`` + length + data segment + CRC + CR LF, out of arbitrary TCP segments.

TCP hands over fragments and coalesced packets; real loggers also count the CRC and CR LF in the length
(+6), write a 3-digit length, drop the CR LF, send segments over 1024 bytes unsplit and use other CRC
algorithms (reference §1.3, §1.7, §7). The framer keeps a per-connection buffer and, for each ``##``:

1. trusts the declared length when the four bytes after it are hex digits whose CRC matches;
2. otherwise delimits the frame by its CR LF (or the next ``##`` when the CR LF is missing) and takes the
   CRC as the hex digits after the segment's closing ``&&``;
3. on a structural failure reports a ``FrameError`` and rescans from the byte after that ``##`` (or from
   the delimiter, which no packet straddles), so a wrong length never swallows the next good packet.

A frame whose CRC matches no variant is still returned (``crc_variant is None``): its data area may be
SM4-encrypted, whose CRC covers the plaintext, so the packet layer decides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from gulou.hj212.crc import CrcVariant, identify

HEADER = b"##"
CRLF = b"\r\n"
STANDARD_MAX_SEGMENT = 1024  # the standard's limit; longer segments arrive unsplit and are accepted
# The length field has four digits: nothing longer can be announced. Bounds the buffer per connection.
DEFAULT_MAX_SEGMENT = 9999
_HEX = frozenset(b"0123456789abcdefABCDEF")
_DIGITS = frozenset(b"0123456789")
_CLOSED = re.compile(rb"&&[0-9A-Fa-f]{3,4}\r?$")
LengthCheck = Literal["exact", "plus6", "chars", "mismatch"]
FrameErrorReason = Literal["bad_header", "too_long", "bad_crc_field", "truncated"]


@dataclass(frozen=True, slots=True)
class Frame:
    """One delimited packet; ``raw`` is byte-exact from ``##`` to the CR LF (when present)."""

    raw: bytes
    segment: bytes
    declared_length: int
    crc_received: int
    crc_variant: CrcVariant | None
    length_check: LengthCheck
    length_digits: int = 4
    terminated: bool = True
    crc_irregular: bool = False  # lower case or fewer than four digits

    @property
    def oversized(self) -> bool:
        """Whether the segment exceeds the standard's 1024 bytes (accepted, but worth a warning)."""
        return len(self.segment) > STANDARD_MAX_SEGMENT


@dataclass(frozen=True, slots=True)
class FrameError:
    """Bytes that began with ``##`` but are not a packet, with the reason."""

    raw: bytes
    reason: FrameErrorReason
    detail: str


FrameEvent = Frame | FrameError


def classify_length(declared: int, segment: bytes) -> LengthCheck:
    """How the declared length relates to the segment: bytes, bytes + CRC + CR LF, or characters."""
    if declared == len(segment):
        return "exact"
    if declared == len(segment) + 6:
        return "plus6"
    if declared == len(segment.decode("utf-8", "replace")):
        return "chars"
    return "mismatch"


class Framer:
    """Turns a byte stream into frames and frame errors; never raises on any input."""

    def __init__(self, max_segment: int = DEFAULT_MAX_SEGMENT) -> None:
        self.max_segment = max_segment
        # ## + 4 digits + segment + 4 CRC digits + CR LF.
        self.max_frame = 2 + 4 + max_segment + 4 + 2
        self._buf = bytearray()
        self._eat = b""  # the rest of a CR LF still due after a frame complete by its length
        self.noise_bytes = 0

    @property
    def buffered(self) -> int:
        """Bytes held waiting for the rest of a packet."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[FrameEvent]:
        """Add received bytes; return every frame (or error) they complete."""
        buf = self._buf
        if self._eat and data:
            # The previous frame was complete by its length before its CR LF arrived.
            eat, self._eat = self._eat, b""
            if data.startswith(eat):
                data = data[len(eat):]
            elif eat == CRLF and data == b"\r":
                self._eat = b"\n"
                return []
        buf += data
        return self._drain(final=False)

    def close(self) -> list[FrameEvent]:
        """The connection ended: frame what the buffer still holds, report the rest as truncated."""
        out = self._drain(final=True)
        if self._buf:
            start = self._buf.find(HEADER)
            if start < 0:
                self.noise_bytes += len(self._buf)
            else:
                self.noise_bytes += start
                rest = bytes(self._buf[start:])
                out.append(FrameError(rest, "truncated", f"connection ended {len(rest)} bytes into a packet"))
            self._buf.clear()
        return out

    def _drain(self, final: bool) -> list[FrameEvent]:
        buf = self._buf
        out: list[FrameEvent] = []
        pos = 0
        while True:
            start = buf.find(HEADER, pos)
            if start < 0:
                # Keep a trailing '#': it may be the first half of the next header.
                keep = 1 if buf.endswith(b"#") and len(buf) > pos else 0
                self.noise_bytes += len(buf) - pos - keep
                del buf[: len(buf) - keep]
                return out
            # "###…": a stray '#' just before a header is noise, not a packet of its own.
            while buf[start + 2:start + 3] == b"#":
                start += 1
            self.noise_bytes += start - pos
            result = self._frame_at(start, final)
            if result is None:
                del buf[:start]
                return out
            event, pos = result
            out.append(event)

    def _frame_at(self, start: int, final: bool) -> tuple[FrameEvent, int] | None:
        """The event for the ``##`` at ``start`` and where scanning resumes, or ``None`` to wait for data."""
        buf = self._buf
        size = len(buf)
        j = start + 2
        while j < size and j < start + 6 and buf[j] in _DIGITS:
            j += 1
        digits = j - start - 2
        if j == size and digits < 4 and not final:
            return None
        if digits < 3:
            # Show the bytes up to the line end or the next '#', without claiming a following packet.
            limit = min(size, start + 256)
            ends = [e for e in (buf.find(CRLF, start + 2, limit), buf.find(b"#", start + 2, limit)) if e >= 0]
            cut = min(ends) if ends else limit
            cut += 2 if buf[cut:cut + 2] == CRLF else 0
            return FrameError(bytes(buf[start:cut]), "bad_header",
                              "## is not followed by a decimal length"), start + 1
        declared = int(buf[start + 2:j])
        body = j
        if digits == 4:
            exact = self._exact(start, body, declared)
            if exact is not None:
                return exact
        crlf = buf.find(CRLF, body)
        nxt = buf.find(HEADER, body)
        ends = [e for e in (crlf, nxt) if e >= 0]
        if not ends:
            if size - start > self.max_frame:
                return FrameError(bytes(buf[start:start + self.max_frame]), "too_long",
                                  f"no end of packet within {self.max_frame} bytes"), start + 1
            if not final or _CLOSED.search(buf, body) is None:
                return None  # wait for more; at the end of the stream: truncated
            end = size
        else:
            end = min(ends)
        terminated = end == crlf
        stop = end + 2 if terminated else end
        raw = bytes(buf[start:stop])
        if end - body > self.max_segment + 4:
            return FrameError(raw, "too_long",
                              f"data segment of {end - body - 4} bytes exceeds {self.max_segment}"), stop
        return self._delimited(raw, buf[body:end], declared, digits, terminated), stop

    def _exact(self, start: int, body: int, declared: int) -> tuple[FrameEvent, int] | None:
        """The frame when the declared length leads to hex digits whose CRC matches the segment."""
        buf = self._buf
        seg_end = body + declared
        if declared > self.max_segment or len(buf) < seg_end + 4:
            return None
        crc_bytes = buf[seg_end:seg_end + 4]
        if not all(c in _HEX for c in crc_bytes):
            return None
        segment = bytes(buf[body:seg_end])
        received = int(crc_bytes, 16)
        variant = identify(segment, received)
        if variant is None:
            return None
        stop = seg_end + 4
        terminated = buf[stop:stop + 2] == CRLF
        if terminated:
            stop += 2
        elif stop == len(buf):
            # The CR LF may still be on its way: swallow it when it comes instead of calling it noise.
            self._eat = CRLF
        elif buf[stop:] == b"\r":
            self._eat = b"\n"
            stop += 1
        frame = Frame(bytes(buf[start:stop]), segment, declared, received, variant, "exact", 4, terminated,
                      crc_irregular=not crc_bytes.isupper() and not crc_bytes.isdigit())
        return frame, stop

    @staticmethod
    def _delimited(raw: bytes, body: bytearray, declared: int, digits: int, terminated: bool) -> FrameEvent:
        """A frame delimited by CR LF (or the next header): the CRC is what follows the closing ``&&``."""
        close = body.rfind(b"&&")
        if close < 0:
            return FrameError(raw, "bad_crc_field", "no closing && before the CRC")
        tail = bytes(body[close + 2:])
        if not 3 <= len(tail) <= 4 or not all(c in _HEX for c in tail):
            return FrameError(raw, "bad_crc_field", f"CRC field {tail[:12]!r} is not 3 or 4 hex digits")
        segment = bytes(body[:close + 2])
        received = int(tail, 16)
        irregular = len(tail) != 4 or (not tail.isupper() and not tail.isdigit())
        return Frame(raw, segment, declared, received, identify(segment, received),
                     classify_length(declared, segment), digits, terminated, irregular)
