"""Data packets → contract readings: periods in Beijing time, flags kept, units converted, bad content refused."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from gulou.hj212 import build
from gulou.hj212.convert import ConvertError, StationReading, merge, to_reading
from gulou.hj212.segment import DataArea, Packet, parse_cp, parse_segment
from gulou.hj212.stations import StationBook, StationConfig, StationSecret, load_secrets, load_stations
from tests.unit.hj212.samples import NOW, SAMPLE_A, SAMPLE_B, air_station, water_station

BEIJING = ZoneInfo("Asia/Shanghai")


def _convert(segment: bytes, station: StationConfig, now: datetime = NOW) -> StationReading | ConvertError:
    packet = parse_segment(segment)
    assert isinstance(packet, Packet)
    area = parse_cp(packet.cp_text)
    assert isinstance(area, DataArea)
    return to_reading(packet, area, station, station.resolved(), now)


def _air(cp: str, cn: str = "2011", **station: object) -> StationReading | ConvertError:
    segment = build.segment(qn="1", st="22", cn=cn, pw="123456", mn="010000A8900016F000169DC0", flag=5, cp=cp)
    return _convert(segment.encode(), air_station(**station))


def test_sample_a_real_time_with_a_calibrating_analyser() -> None:
    reading = _convert(SAMPLE_A, air_station())
    assert isinstance(reading, StationReading)
    assert reading.ts == datetime(2026, 11, 30, 9, 30, tzinfo=BEIJING)
    assert reading.ts.isoformat() == "2026-11-30T09:30:00+08:00"
    assert (reading.period, reading.period_end, reading.device_id, reading.domain) == ("rtd", None, "aq-001", "air")
    assert reading.values == {"pm25": 38.5, "pm10": 62.0, "so2": 9.0, "no2": 31.0, "o3": 74.0, "co": 0.62,
                              "temperature": 8.4, "humidity": 56.0}
    assert reading.flags["so2"] == "C" and not reading.valid["so2"]
    assert all(reading.valid[m] for m in reading.values if m != "so2")
    # Pressure and wind are not contract metrics of an air station: left out, and said so.
    assert reading.unmapped == ("a01006", "a01007", "a01008")
    extended = reading.payload(extended=True)
    assert extended["period"] == "rtd" and extended["flags"]["so2"] == "C" and extended["so2"] == 9.0
    # Without the contract's flag fields, the calibration value is not published at all.
    plain = reading.payload(extended=False)
    assert "so2" not in plain and plain["pm25"] == 38.5 and set(plain) == {"ts", *(m for m in reading.values
                                                                                    if m != "so2")}


def test_sample_b_hourly_data_is_stamped_with_the_period_start() -> None:
    reading = _convert(SAMPLE_B, water_station())
    assert isinstance(reading, StationReading)
    # DataTime 21:00:01 — an hourly value belongs to 21:00-22:00.
    assert reading.ts == datetime(2020, 11, 29, 21, 0, tzinfo=BEIJING)
    assert reading.period_end == datetime(2020, 11, 29, 22, 0, tzinfo=BEIJING)
    assert reading.period == "hour"
    assert reading.values == {"temperature": 23.1, "ph": 7.64, "do": 6.6, "conductivity": 300.0, "turbidity": 17.0,
                              "codmn": 1.4, "tp": 0.042, "nh3n": 0.16}
    assert "w21001" in reading.unmapped  # total nitrogen: not a contract metric


@pytest.mark.parametrize(("cn", "datatime", "start", "end"), [
    ("2051", "20261130084500", "2026-11-30T08:40:00+08:00", "2026-11-30T08:50:00+08:00"),
    ("2061", "20261130080000", "2026-11-30T08:00:00+08:00", "2026-11-30T09:00:00+08:00"),
    ("2031", "20261129000000", "2026-11-29T00:00:00+08:00", "2026-11-30T00:00:00+08:00"),
])
def test_periods(cn: str, datatime: str, start: str, end: str) -> None:
    reading = _air(f"DataTime={datatime};a34004-Min=1,a34004-Avg=2,a34004-Max=3,a34004-Flag=N", cn=cn)
    assert isinstance(reading, StationReading)
    assert (reading.ts.isoformat(), reading.period_end and reading.period_end.isoformat()) == (start, end)
    assert reading.values == {"pm25": 2.0}


def test_units_from_the_2017_table_are_converted() -> None:
    # The 2017 table prints PM in ng/m³; one open-source test sends a34004-Rtd=75600.000.
    reading = _air("DataTime=20261130093000;a34004-Rtd=75600.000,a34004-Flag=N",
                   codes={"a34004": {"metric": "pm25", "unit": "ng/m3"}})
    assert isinstance(reading, StationReading) and reading.values["pm25"] == pytest.approx(75.6)
    # Configurable O3 code: a platform sending a0502401 for the 1 h value.
    reading = _air("DataTime=20261130093000;a0502401-Rtd=88,a0502401-Flag=N",
                   codes={"a0502401": {"metric": "o3"}, "a05024": None})
    assert isinstance(reading, StationReading) and reading.values == {"o3": 88.0}


def test_station_config_refuses_impossible_tables() -> None:
    with pytest.raises(ValidationError, match="no metric"):
        air_station(codes={"a99999": {"metric": "radon"}})
    with pytest.raises(ValidationError, match="no conversion"):
        air_station(codes={"a34004": {"metric": "pm25", "unit": "ppb"}})
    with pytest.raises(ValidationError, match="unknown data flags"):
        air_station(valid_flags=["N", "X"])
    with pytest.raises(ValidationError, match="minute interval"):
        air_station(minute_interval_min=7)


@pytest.mark.parametrize(("cp", "reason"), [
    ("a34004-Rtd=1,a34004-Flag=N", "missing_datatime"),
    ("DataTime=20261330093000;a34004-Rtd=1", "bad_datatime"),
    ("DataTime=1999;a34004-Rtd=1", "bad_datatime"),
    ("DataTime=20261130100000;a34004-Rtd=1,a34004-Flag=N", "future_timestamp"),
    ("DataTime=20261130093000;a34004-Rtd=abc,a34004-Flag=N", "bad_value"),
    ("DataTime=20261130093000;a34004-Rtd=nan,a34004-Flag=N", "bad_value"),
    ("DataTime=20261130093000;a34004-Rtd=-5,a34004-Flag=N", "out_of_range"),
    ("DataTime=20261130093000;a01007-Rtd=1.8,a01007-Flag=N", "no_metrics"),
])
def test_bad_content_is_refused(cp: str, reason: str) -> None:
    result = _air(cp)
    assert isinstance(result, ConvertError) and result.reason == reason, result


def test_millisecond_datatime_is_accepted() -> None:
    reading = _air("DataTime=20261130093000500;a34004-Rtd=1,a34004-Flag=N")
    assert isinstance(reading, StationReading)
    assert reading.ts == datetime(2026, 11, 30, 9, 30, 0, 500000, tzinfo=BEIJING)


def test_flags_decide_validity_and_out_of_range_invalid_values_are_dropped() -> None:
    reading = _air("DataTime=20261130093000;a34004-Rtd=-999,a34004-Flag=F;a21026-Rtd=9,a21026-Flag=D;"
                   "a21004-Rtd=31;a05024-Rtd=900,a05024-Flag=T;a21005-Rtd=1,a21005-Flag=S")
    assert isinstance(reading, StationReading)
    assert reading.dropped == {"pm25": "out_of_range"}  # instrument stopped: -999 is no measurement
    # The dropped value's flag is kept: the reading says pm25 was stopped rather than nothing at all.
    assert reading.flags == {"pm25": "F", "so2": "D", "no2": "", "o3": "T", "co": "S"}
    assert reading.valid == {"so2": False, "no2": False, "o3": False, "co": False}
    # Extended payloads carry every lettered value with its flag; no2 (no letter, not valid) cannot say it is
    # invalid in the contract and is left out. Plain payloads carry valid values only: none here.
    body = reading.payload(extended=True)
    assert body["flags"] == {"pm25": "F", "so2": "D", "o3": "T", "co": "S"} and body["period"] == "rtd"
    assert {k: v for k, v in body.items() if k not in ("ts", "period", "flags")} == {"so2": 9.0, "o3": 900.0,
                                                                                    "co": 1.0}
    assert reading.published(extended=False) == {}
    # Missing flags read as N and S counted valid: both configurable ([U] in the reference).
    lenient = _air("DataTime=20261130093000;a21004-Rtd=31;a21005-Rtd=1,a21005-Flag=S", missing_flag="N",
                   valid_flags=["N", "S"])
    assert isinstance(lenient, StationReading) and lenient.valid == {"no2": True, "co": True}
    assert lenient.payload(extended=False) == {"ts": "2026-11-30T09:30:00+08:00", "no2": 31.0, "co": 1.0}


def test_flags_are_read_as_one_upper_case_letter_and_vendor_codes_stay_out_of_payloads() -> None:
    reading = _air("DataTime=20261130093000;a34004-Rtd=35,a34004-Flag=n ;a21026-Rtd=9,a21026-Flag=A01")
    assert isinstance(reading, StationReading)
    assert reading.flags == {"pm25": "N", "so2": "A01"} and reading.valid == {"pm25": True, "so2": False}
    body = reading.payload()
    assert body["flags"] == {"pm25": "N"} and "so2" not in body and body["pm25"] == 35.0


def test_split_parts_merge() -> None:
    first = _air("DataTime=20261130093000;a34004-Rtd=1,a34004-Flag=N")
    second = _air("DataTime=20261130093000;a21026-Rtd=9,a21026-Flag=C")
    assert isinstance(first, StationReading) and isinstance(second, StationReading)
    both = merge(first, second)
    assert both.values == {"pm25": 1.0, "so2": 9.0} and both.flags == {"pm25": "N", "so2": "C"}


def test_time_zone_is_per_station() -> None:
    segment = build.segment(qn="1", st="22", cn="2011", pw="1", mn="M", flag=5,
                            cp="DataTime=20261130093000;a34004-Rtd=1,a34004-Flag=N")
    reading = _convert(segment.encode(), air_station(timezone="UTC"), now=NOW + timedelta(hours=9))
    assert isinstance(reading, StationReading)
    assert reading.ts == datetime(2026, 11, 30, 9, 30, tzinfo=ZoneInfo("UTC"))
    assert reading.ts - datetime(2026, 11, 30, 17, 30, tzinfo=BEIJING) == timedelta(0)


def test_secrets_come_from_a_file_and_every_password_is_required(tmp_path: object) -> None:
    from pathlib import Path

    folder = Path(str(tmp_path))
    (folder / "secrets.yaml").write_text("010000A8900016F000169DC0: '123456'\nNM100000_0005:\n  password: abc\n"
                                         "  sm4_key: '0000000000000000'\n", encoding="utf-8")
    secrets = load_secrets(folder / "secrets.yaml")
    assert secrets["010000A8900016F000169DC0"] == StationSecret("123456")
    assert secrets["NM100000_0005"].sm4_key == b"0" * 16
    (folder / "stations.yaml").write_text(
        "stations:\n- {mn: 010000A8900016F000169DC0, device_id: aq-001, device_type: air_station}\n"
        "- {mn: NM100000_0005, device_id: wq-baima-01, device_type: water_station, kind: micro}\n",
        encoding="utf-8")
    stations = load_stations(folder / "stations.yaml")
    assert [s.kind for s in stations] == ["evaluation", "micro"]
    assert len(StationBook(stations, secrets)) == 2
    with pytest.raises(ValueError, match="secrets file has none"):
        StationBook(stations, {})
    assert len(StationBook([air_station(auth="none")], {})) == 1


@pytest.mark.parametrize(("cn", "period"), [("2011", "rtd"), ("2051", "minute"), ("2061", "hour"), ("2031", "day")])
def test_extended_payloads_pass_the_device_contract(cn: str, period: str) -> None:
    from gulou.devices.contract import Decoder, Reading
    from gulou.devices.registry import load_registry

    suffix = "Rtd" if cn == "2011" else "Avg"
    reading = _air(f"DataTime=20261130090000;a34004-{suffix}=38.5,a34004-Flag=N;a21026-{suffix}=9,a21026-Flag=C",
                   cn=cn)
    assert isinstance(reading, StationReading)
    body = reading.payload()
    decoded = Decoder(load_registry()).decode(reading.topic, json.dumps(body).encode(), NOW)
    assert isinstance(decoded, Reading), decoded
    assert decoded.period == period and decoded.ts == reading.ts
    assert decoded.values == {"pm25": 38.5} and decoded.invalid == {"so2": 9.0}
    assert decoded.flags == {"pm25": "N", "so2": "C"}
