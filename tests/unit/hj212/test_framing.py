"""Stream framing: split and coalesced TCP segments, the length/CRC variants of real loggers, bad input."""

from __future__ import annotations

import pytest

from gulou.hj212 import build
from gulou.hj212.crc import hj212_crc
from gulou.hj212.framing import Frame, FrameError, FrameEvent, Framer
from tests.unit.hj212.samples import SAMPLE_A, SAMPLE_A_WIRE, SAMPLE_B_WIRE


def _feed(*chunks: bytes, close: bool = True, framer: Framer | None = None) -> list[FrameEvent]:
    framer = framer or Framer()
    events: list[FrameEvent] = []
    for chunk in chunks:
        events.extend(framer.feed(chunk))
    if close:
        events.extend(framer.close())
    return events


def _frames(events: list[FrameEvent]) -> list[Frame]:
    assert all(isinstance(e, Frame) for e in events), events
    return [e for e in events if isinstance(e, Frame)]


def test_sample_split_at_every_byte() -> None:
    for cut in range(1, len(SAMPLE_A_WIRE)):
        framer = Framer()
        first = framer.feed(SAMPLE_A_WIRE[:cut])
        rest = framer.feed(SAMPLE_A_WIRE[cut:])
        assert first == [] or cut >= len(SAMPLE_A_WIRE) - 2, cut
        (frame,) = _frames(first + rest + framer.close())
        assert frame.segment == SAMPLE_A
        assert frame.raw == SAMPLE_A_WIRE or cut >= len(SAMPLE_A_WIRE) - 2
        assert (frame.crc_variant, frame.length_check) == ("standard", "exact")
        assert framer.noise_bytes == 0


def test_byte_by_byte_and_coalesced() -> None:
    stream = SAMPLE_A_WIRE + SAMPLE_B_WIRE + SAMPLE_A_WIRE
    framer = Framer()
    one_by_one = _frames(_feed(*[stream[i:i + 1] for i in range(len(stream))], framer=framer))
    together = _frames(_feed(stream))
    assert [f.raw for f in together] == [SAMPLE_A_WIRE, SAMPLE_B_WIRE, SAMPLE_A_WIRE]
    # Byte by byte, a frame is reported as soon as its CRC is complete (the station waits for the
    # answer); the CR LF that follows is consumed, not counted as noise.
    assert [f.segment for f in one_by_one] == [f.segment for f in together]
    assert framer.noise_bytes == 0 and framer.buffered == 0


def test_noise_between_packets_is_skipped_and_counted() -> None:
    framer = Framer()
    modbus_tcp = bytes.fromhex("000100000006010300000002")
    events = _feed(b"GET / HTTP/1.1\r\n\r\n", SAMPLE_A_WIRE, modbus_tcp, b"#", SAMPLE_B_WIRE, framer=framer)
    assert [e.raw for e in events if isinstance(e, Frame)] == [SAMPLE_A_WIRE, SAMPLE_B_WIRE]
    assert [e for e in events if isinstance(e, FrameError)] == []
    # A stray '#' just before the next header is noise too.
    assert framer.noise_bytes == 18 + len(modbus_tcp) + 1


@pytest.mark.parametrize(("fault", "check"), [
    ({"variant": "standard_swapped"}, ("standard_swapped", "exact")),
    ({"variant": "modbus_swapped"}, ("modbus_swapped", "exact")),
    ({"variant": "modbus"}, ("modbus", "exact")),
    ({"length_offset": 6}, ("standard", "plus6")),
    ({"length_offset": 17}, ("standard", "mismatch")),
    ({"lower_hex": True}, ("standard", "exact")),
])
def test_variants_real_loggers_send(fault: dict[str, object], check: tuple[str, str]) -> None:
    wire = build.frame(SAMPLE_A, **fault)  # type: ignore[arg-type]
    (frame,) = _frames(_feed(wire, SAMPLE_B_WIRE)[:1])
    assert (frame.crc_variant, frame.length_check) == check
    assert frame.segment == SAMPLE_A
    assert frame.raw == wire


def test_three_digit_length_and_crc() -> None:
    # Integer.toHexString writes the CRC without leading zeros and in lower case; one builder wrote
    # a 3-digit length (reference pitfalls 5 and 6).
    segment = next(s for s in (b"QN=%d;ST=22;CN=9015;MN=X;Flag=5;CP=&&&&" % i for i in range(999))
                   if hj212_crc(s) < 0x1000)
    short = b"%x" % hj212_crc(segment)
    wire = b"##%03d" % len(segment) + segment + short + b"\r\n"
    (frame,) = _frames(_feed(wire, SAMPLE_A_WIRE)[:1])
    assert (frame.length_digits, len(short)) == (3, 3)
    assert (frame.crc_variant, frame.crc_irregular, frame.segment) == ("standard", True, segment)


def test_missing_crlf_between_and_at_the_end() -> None:
    no_crlf = build.frame(SAMPLE_A, crlf=False)
    frames = _frames(_feed(no_crlf, no_crlf, SAMPLE_B_WIRE))
    assert [f.terminated for f in frames] == [False, False, True]
    # Complete by its length: reported at once, and its CR LF arriving later is not noise.
    framer = Framer()
    assert len(framer.feed(no_crlf)) == 1
    assert framer.feed(b"\r") == [] and framer.feed(b"\n") == []
    assert framer.noise_bytes == 0 and framer.buffered == 0
    # Wrong length and no CR LF: delimited by the end of the stream when the link closes.
    (last,) = _frames(_feed(build.frame(SAMPLE_A, crlf=False, length_offset=6)))
    assert (last.length_check, last.crc_variant) == ("plus6", "standard")


def test_oversized_packets_are_accepted() -> None:
    info = "i11001-Info=//" + "设备运行正常" * 70 + "//"
    segment = SAMPLE_A[:-2] + b";" + info.encode() + b"&&"
    assert 1024 < len(segment) < 9999
    (frame,) = _frames(_feed(build.frame(segment)))
    assert frame.oversized and frame.segment == segment


def test_packets_beyond_the_cap_are_refused_and_the_stream_recovers() -> None:
    framer = Framer(max_segment=500)
    big = build.frame(SAMPLE_A[:-2] + b";x=" + b"9" * 600 + b"&&")
    events = _feed(big, SAMPLE_A_WIRE, framer=framer)
    assert isinstance(events[0], FrameError) and events[0].reason == "too_long"
    assert isinstance(events[1], Frame) and events[1].segment == SAMPLE_A
    # No end at all within the cap: refused without waiting forever, memory stays bounded.
    framer = Framer(max_segment=500)
    events = framer.feed(b"##0432" + b"x" * 2000)
    assert [e.reason for e in events if isinstance(e, FrameError)] == ["too_long"]
    assert framer.buffered < 600


@pytest.mark.parametrize(("wire", "reason"), [
    (b"##QN=1;CN=2011&&0000\r\n", "bad_header"),
    (b"##0010QN=1;CN=2011;MN=X;CP=&&&&ZZZZ\r\n", "bad_crc_field"),
    (b"##0010QN=1;CN=2011;MN=X\r\n", "bad_crc_field"),
    (b"##0432QN=20261130093000123;ST=22", "truncated"),
])
def test_structural_errors(wire: bytes, reason: str) -> None:
    events = _feed(wire, close=True)
    assert [e.reason for e in events if isinstance(e, FrameError)][:1] == [reason]
    assert all(e.raw.startswith(b"##") for e in events if isinstance(e, FrameError))


def test_a_wrong_length_never_swallows_the_next_packet() -> None:
    # Declared 0999 while the segment is 432 bytes, with and without CR LF: the next packet survives.
    liar = b"##0999" + SAMPLE_A + b"A441"
    for tail in (b"\r\n", b""):
        events = _feed(liar + tail + SAMPLE_B_WIRE)
        frames = [e for e in events if isinstance(e, Frame)]
        assert [f.raw for f in frames][-1] == SAMPLE_B_WIRE
        assert frames[0].segment == SAMPLE_A and frames[0].length_check == "mismatch"


def test_bad_crc_is_framed_for_the_packet_layer() -> None:
    wire = b"##0432" + SAMPLE_A + b"0000\r\n"
    (frame,) = _frames(_feed(wire))
    assert frame.crc_variant is None and frame.raw == wire
