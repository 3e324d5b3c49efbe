"""CRC, packet builders and the data segment parser against the reference's worked samples, byte for byte."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gulou.hj212 import build
from gulou.hj212.crc import CRC_VARIANTS, crc_text, crc_value, hj212_crc, identify, modbus_crc, swap
from gulou.hj212.segment import Packet, SegmentError, parse_cp, parse_segment
from tests.unit.hj212.samples import (
    HEARTBEAT_2025,
    HJ2025_A1,
    S17_APPENDIX_A,
    SAMPLE_A,
    SAMPLE_A_REPLY,
    SAMPLE_A_WIRE,
    SAMPLE_B,
    SAMPLE_B_REPLY,
    SAMPLE_B_WIRE,
)


def _packet(segment: bytes) -> Packet:
    parsed = parse_segment(segment)
    assert isinstance(parsed, Packet), parsed
    return parsed


@pytest.mark.parametrize(("segment", "length", "crc"), [
    (S17_APPENDIX_A, 101, b"1C80"),
    (HJ2025_A1, 87, b"2200"),
    (SAMPLE_A, 432, b"A441"),
    (SAMPLE_B, 561, b"4C80"),
])
def test_reference_vectors(segment: bytes, length: int, crc: bytes) -> None:
    assert len(segment) == length
    assert crc_text(segment) == crc


def test_check_values_tell_the_algorithms_apart() -> None:
    assert hj212_crc(b"123456789") == 0x2F80
    assert modbus_crc(b"123456789") == 0x4B37
    assert hj212_crc(b"") == 0xFFFF


@given(st.binary(min_size=1, max_size=300))
def test_standard_crc_takes_only_256_values(data: bytes) -> None:
    # Reference §1.2: the low byte is always one of eight values, which makes a swapped CRC recognisable.
    assert hj212_crc(data) & 0xFF in {0x00, 0x01, 0x40, 0x41, 0x80, 0x81, 0xC0, 0xC1}


@given(st.binary(min_size=1, max_size=200), st.sampled_from(CRC_VARIANTS))
def test_every_variant_is_identified(data: bytes, variant: str) -> None:
    found = identify(data, crc_value(data, variant))  # type: ignore[arg-type]
    # Where two variants give the same number the earlier (more common) one is reported.
    assert found is not None
    assert crc_value(data, found) == crc_value(data, variant)  # type: ignore[arg-type]
    assert CRC_VARIANTS.index(found) <= CRC_VARIANTS.index(variant)


def test_single_byte_errors_are_caught() -> None:
    for i in range(len(SAMPLE_A)):
        damaged = SAMPLE_A[:i] + bytes([SAMPLE_A[i] ^ 0x01]) + SAMPLE_A[i + 1:]
        assert hj212_crc(damaged) != 0xA441


def test_frame_and_replies_byte_for_byte() -> None:
    assert build.frame(SAMPLE_A) == SAMPLE_A_WIRE
    assert build.frame(SAMPLE_B) == SAMPLE_B_WIRE
    assert build.data_response(_packet(SAMPLE_A)) == SAMPLE_A_REPLY
    # Sample B's reply echoes its version bits (Flag 9 → 8): same version, no ack requested.
    assert build.data_response(_packet(SAMPLE_B)) == SAMPLE_B_REPLY
    heartbeat = _packet(HEARTBEAT_2025[6:-6])
    assert build.frame(HEARTBEAT_2025[6:-6]) == HEARTBEAT_2025
    assert build.notify_response(heartbeat) == (
        b"##0087QN=20261130093500000;ST=91;CN=9013;PW=123456;MN=010000A8900016F000169DC0;Flag=8;CP=&&&&"
        + crc_text(b"QN=20261130093500000;ST=91;CN=9013;PW=123456;MN=010000A8900016F000169DC0;Flag=8;CP=&&&&")
        + b"\r\n")


def test_command_answers_and_time_requests() -> None:
    packet = _packet(S17_APPENDIX_A)
    answer = build.request_response(packet, 1)
    assert b";ST=91;CN=9011;" in answer and b"CP=&&QnRtn=1&&" in answer and b"QN=20160801085857223;" in answer
    assert b"CP=&&ExeRtn=1&&" in build.execution_result(packet, 1)
    moment = datetime(2026, 11, 30, 1, 30, 15, 250000, tzinfo=UTC)
    request = build.set_time(mn="MN1", st="22", pw="123456", version=1, moment=moment)
    assert request.startswith(b"##") and request.endswith(b"\r\n")
    # Beijing time, Flag 5 (2017, answer requested).
    assert b"QN=20261130093015250;ST=22;CN=1012;PW=123456;MN=MN1;Flag=5;CP=&&SystemTime=20261130093015&&" in request
    assert b"CN=1011;" in build.get_time(mn="MN1", st="22", pw="1", version=2, moment=moment)


def test_fault_options_of_the_builder() -> None:
    segment = SAMPLE_A
    assert build.frame(segment, variant="standard_swapped")[-6:-2] == b"41A4"
    assert build.frame(segment, length_offset=6)[:6] == b"##0438"
    assert build.frame(segment, lower_hex=True)[-6:-2] == b"a441"
    assert not build.frame(segment, crlf=False).endswith(b"\r\n")
    assert swap(0xA441) == 0x41A4


def test_header_fields_by_name() -> None:
    packet = _packet(SAMPLE_A)
    assert (packet.qn, packet.st, packet.cn, packet.pw, packet.mn, packet.flag) == (
        "20261130093000123", "22", "2011", "123456", "010000A8900016F000169DC0", 5)
    assert (packet.version, packet.ack_requested, packet.split) == (1, True, False)
    water = _packet(SAMPLE_B)
    assert (water.version, water.ack_requested, water.mn) == (2, True, "NM100000_0005")


def test_tolerated_headers() -> None:
    # QN after CN, no QN at all, no Flag (2005 style), the standard's own ',ST=' typo, empty PW, RF=1.
    old = _packet(b"ST=22;CN=2011;PW=;MN=120112TJTGGN13;CP=&&DataTime=20201030000000;PM25-Rtd=1&&")
    assert (old.qn, old.flag, old.version, old.ack_requested, old.pw) == (None, None, 0, False, "")
    typo = _packet(b"QN=1,ST=32;CN=2011;MN=X;Flag=4;RF=1;CP=&&&&")
    assert (typo.st, typo.backfill) == ("32", True)
    assert _packet(b"CN=9015;QN=2;MN=Y;CP=&&&&").qn == "2"


@pytest.mark.parametrize(("segment", "reason"), [
    (b"QN=1;ST=22;CN=2011;PW=1;Flag=5;CP=&&&&", "bad_header"),
    (b"QN=1;ST=22;CN=20111;MN=X;CP=&&&&", "bad_header"),
    (b"QN=1;MN=X;CN=2011;Flag=five;CP=&&&&", "bad_header"),
    (b"QN=1;MN=X;CN=2011;Flag=300;CP=&&&&", "bad_header"),
    (b"QN=1;MN=X;CN=2011;Flag=7;CP=&&&&", "bad_split"),
    (b"QN=1;MN=X;CN=2011;Flag=7;PNUM=2;CP=&&&&", "bad_split"),
    (b"QN=1;MN=X;CN=2011;Flag=7;PNUM=2;PNO=3;CP=&&&&", "bad_split"),
    (b"QN=1;MN=X;CN=2011;Flag=5;CP=&&DataTime=1", "bad_cp"),
    (b"QN=1;MN=X;CN=2011;junk;CP=&&&&", "bad_header"),
])
def test_bad_headers_are_refused_with_a_reason(segment: bytes, reason: str) -> None:
    parsed = parse_segment(segment)
    assert isinstance(parsed, SegmentError)
    assert parsed.reason == reason


def test_data_area_items() -> None:
    area = parse_cp(_packet(SAMPLE_A).cp_text)
    assert not isinstance(area, SegmentError)
    assert area.fields == {"DataTime": "20261130093000"}
    assert area.items["a21026"] == {"Rtd": "9", "Flag": "C"}
    assert len(area.items) == 11
    # Trailing ';', spaces, ';' between every pair, and an empty area are all fine.
    loose = parse_cp("DataTime=20261130093000; a34004-Rtd=1 ;a34004-Flag=N;;")
    assert not isinstance(loose, SegmentError)
    assert loose.items == {"a34004": {"Rtd": "1", "Flag": "N"}}
    empty = parse_cp("")
    assert not isinstance(empty, SegmentError) and not empty.items and not empty.fields


@pytest.mark.parametrize("text", ["DataTime", "a34004-Rtd=1;=3", "a=1;a=2", "-Rtd=1"])
def test_unparsable_data_areas(text: str) -> None:
    assert isinstance(parse_cp(text), SegmentError)


def test_chinese_text_in_utf8_and_gbk() -> None:
    text = "DataTime=20261130093000;i11001-Info=//清洗管路;更换滤膜//;a34004-Rtd=1"
    for encoding, expected in (("utf-8", "utf-8"), ("gbk", "gb18030")):
        segment = b"QN=1;ST=22;CN=2011;MN=X;Flag=5;CP=&&" + text.encode(encoding) + b"&&"
        packet = _packet(segment)
        assert packet.encoding == expected
        area = parse_cp(packet.cp_text)
        assert not isinstance(area, SegmentError)
        assert area.items["i11001"]["Info"] == "//清洗管路;更换滤膜//"
        assert area.items["a34004"] == {"Rtd": "1"}


def _appendix_a(data: bytes) -> int:
    """The standard's procedure, step by step, as the reference restates it (§1.2)."""
    reg = 0xFFFF
    for byte in data:
        reg = (reg >> 8) ^ byte
        for _ in range(8):
            bit = reg & 1
            reg >>= 1
            if bit:
                reg ^= 0xA001
    return reg


@given(st.binary(max_size=200))
def test_fast_crc_equals_the_procedure_of_appendix_a(data: bytes) -> None:
    assert hj212_crc(data) == _appendix_a(data)
    assert hj212_crc(bytearray(data)) == _appendix_a(data)
