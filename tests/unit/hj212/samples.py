"""The reference's worked samples (hj212.md §1.4-1.6), byte for byte, and small builders for tests."""

from __future__ import annotations

from datetime import UTC, datetime

from gulou.hj212 import build
from gulou.hj212.stations import StationBook, StationConfig, StationSecret

# §1.4, S17 appendix A (the prose says 1C08; the packet next to it shows 1C80, which is correct).
S17_APPENDIX_A = (b"QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;"
                  b"CP=&&RtdInterval=30&&")
# §1.4, HJ 212-2025 appendix A.1.
HJ2025_A1 = b"QN=20240601085857223;ST=32;CN=1011;PW=123456;MN=010000A8900016F000169DC0;Flag=9;CP=&&&&"
# §1.5, worked sample A: air real-time data, HJ 212-2017, SO2 calibrating.
SAMPLE_A = (
    b"QN=20261130093000123;ST=22;CN=2011;PW=123456;MN=010000A8900016F000169DC0;Flag=5;CP=&&DataTime=20261130093000;"
    b"a34004-Rtd=38.5,a34004-Flag=N;a34002-Rtd=62.0,a34002-Flag=N;a21026-Rtd=9,a21026-Flag=C;a21004-Rtd=31,"
    b"a21004-Flag=N;a05024-Rtd=74,a05024-Flag=N;a21005-Rtd=0.62,a21005-Flag=N;a01001-Rtd=8.4,a01001-Flag=N;"
    b"a01002-Rtd=56.0,a01002-Flag=N;a01006-Rtd=101.62,a01006-Flag=N;a01007-Rtd=1.8,a01007-Flag=N;"
    b"a01008-Rtd=315,a01008-Flag=N&&"
)
SAMPLE_A_WIRE = b"##0432" + SAMPLE_A + b"A441\r\n"
SAMPLE_A_REPLY = (b"##0087QN=20261130093000123;ST=91;CN=9014;PW=123456;MN=010000A8900016F000169DC0;Flag=4;"
                  b"CP=&&&&D641\r\n")
# §1.6, worked sample B: a real surface-water hourly packet (MN of 13 chars, Flag=9 in 2020).
SAMPLE_B = (
    b"QN=20201030000000437;ST=21;CN=2061;PW=123456;MN=NM100000_0005;Flag=9;CP=&&DataTime=20201129210001;"
    b"w01010-Avg=23.1,w01010-Flag=N;w01001-Avg=7.64,w01001-Flag=N;w01009-Avg=6.60,w01009-Flag=N;"
    b"w01014-Avg=300,w01014-Flag=N;w01003-Avg=17,w01003-Flag=N;w01019-Avg=1.4,w01019-Flag=N;"
    b"w21011-Avg=0.042,w21011-Flag=N;w21001-Avg=3.04,w21001-Flag=N;w21003-Avg=0.16,w21003-Flag=N;"
    b"w20120-Avg=0.00011,w20120-Flag=N;w20119-Avg=0.00000,w20119-Flag=N;w23002-Avg=0.0005,w23002-Flag=N;"
    b"w21016-Avg=0.002,w21016-Flag=N;w20115-Avg=0.00001,w20115-Flag=N;w20122-Avg=0.00005,w20122-Flag=N&&"
)
SAMPLE_B_WIRE = b"##0561" + SAMPLE_B + b"4C80\r\n"
SAMPLE_B_REPLY = (b"##0076QN=20201030000000437;ST=91;CN=9014;PW=123456;MN=NM100000_0005;Flag=8;CP=&&&&71C0"
                  b"\r\n")
HEARTBEAT_2025 = (b"##0087QN=20261130093500000;ST=21;CN=9015;PW=123456;MN=010000A8900016F000169DC0;Flag=9;"
                  b"CP=&&&&2A80\r\n")

AIR_MN = "010000A8900016F000169DC0"
WATER_MN = "NM100000_0005"
PASSWORD = "123456"
# Sample A was taken at 09:30 Beijing time on 2026-11-30; "now" is shortly after.
NOW = datetime(2026, 11, 30, 1, 31, tzinfo=UTC)


def air_station(**overrides: object) -> StationConfig:
    """The station of sample A, feeding the registry's aq-001."""
    return StationConfig.model_validate({"mn": AIR_MN, "device_id": "aq-001", "device_type": "air_station",
                                         **overrides})


def water_station(**overrides: object) -> StationConfig:
    """The station of sample B, feeding wq-baima-01."""
    return StationConfig.model_validate({"mn": WATER_MN, "device_id": "wq-baima-01",
                                         "device_type": "water_station", **overrides})


def book(*stations: StationConfig, key: bytes | None = None) -> StationBook:
    """A station book where every station has the samples' password."""
    chosen = stations or (air_station(), water_station())
    return StationBook(chosen, {s.mn: StationSecret(PASSWORD, key) for s in chosen})


def air_packet(moment: str = "20261130093000", *, qn: str = "20261130093000123", values: str | None = None,
               flag: int = 5, mn: str = AIR_MN, pw: str = PASSWORD, cn: str = "2011", extra: str = "") -> bytes:
    """A framed air data packet (standard CRC) with the given DataTime and data items."""
    suffix = "Rtd" if cn == "2011" else "Avg"
    items = values or f"a34004-{suffix}=38.5,a34004-Flag=N;a21026-{suffix}=9,a21026-Flag=C"
    cp = f"DataTime={moment};{items}" if moment else items
    return build.frame(build.segment(qn=qn, st="22", cn=cn, pw=pw, mn=mn, flag=flag, cp=cp + extra))
