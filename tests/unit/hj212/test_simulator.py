"""The station simulator's encoder: what each field fault looks like on the wire, and logger-style means."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gulou.hj212.downstream import MemoryDownstream
from gulou.hj212.framing import Frame, Framer
from gulou.hj212.gateway import Gateway
from gulou.hj212.segment import Packet, parse_segment
from gulou.hj212.simulator import FAULTS, Aggregator, FaultKind, FaultPlan, StationEncoder, calibrating
from gulou.hj212.sm4 import TEST_KEY
from tests.unit.hj212.samples import NOW, PASSWORD, air_station, book, water_station
from tests.unit.hj212.test_gateway import FakeLink

BEIJING = ZoneInfo("Asia/Shanghai")
MOMENT = datetime(2026, 11, 30, 9, 20, tzinfo=BEIJING)
VALUES = {"pm25": 38.5, "pm10": 61.2, "so2": 6.0, "no2": 41.2, "o3": 52.0, "co": 0.7, "temperature": 17.8,
          "humidity": 72.0}


def _frames(data: bytes) -> list[Frame]:
    framer = Framer()
    events = framer.feed(data) + framer.close()
    assert all(isinstance(e, Frame) for e in events), events
    return [e for e in events if isinstance(e, Frame)]


def _deliver(*wires: bytes, key: bytes | None = None) -> tuple[Gateway, MemoryDownstream, FakeLink]:
    memory = MemoryDownstream()
    gateway = Gateway(book(air_station(), water_station(), key=key), memory, clock=lambda: NOW)
    link = FakeLink()

    async def run() -> None:
        framer = Framer()
        for wire in wires:
            for event in framer.feed(wire):
                await gateway.handle(event, link)

    asyncio.run(run())
    return gateway, memory, link


def test_a_clean_real_time_packet_round_trips() -> None:
    encoder = StationEncoder(air_station(), PASSWORD)
    (out,) = encoder.data("rtd", MOMENT, VALUES)
    (frame,) = _frames(out.data)
    assert (frame.crc_variant, frame.length_check, frame.terminated) == ("standard", "exact", True)
    packet = parse_segment(frame.segment)
    assert isinstance(packet, Packet) and (packet.cn, packet.flag, packet.st, packet.qn) == ("2011", 5, "22", out.qn)
    _, memory, link = _deliver(out.data)
    assert memory.readings[0].values == VALUES and link.cns() == ["9014"]


@pytest.mark.parametrize(("fault", "check"), [
    ("swapped_crc", lambda f: f.crc_variant == "standard_swapped"),
    ("modbus_crc", lambda f: f.crc_variant == "modbus_swapped"),
    ("plus6", lambda f: f.length_check == "plus6"),
    ("lower_crc", lambda f: f.crc_irregular),
    ("no_crlf", lambda f: not f.terminated),
    ("oversized", lambda f: f.oversized),
])
def test_each_field_fault_on_the_wire(fault: FaultKind, check: object) -> None:
    encoder = StationEncoder(air_station(), PASSWORD)
    (out,) = encoder.data("rtd", MOMENT, VALUES, faults=frozenset({fault}))
    (frame,) = _frames(out.data)
    assert check(frame)  # type: ignore[operator]
    _, memory, _ = _deliver(out.data)
    assert memory.readings[0].values == VALUES


def test_split_messages_tcp_pieces_and_lost_acks_are_marked() -> None:
    encoder = StationEncoder(air_station(), PASSWORD, version=2)
    parts = encoder.data("rtd", MOMENT, VALUES, faults=frozenset({"pnum_split", "tcp_split", "lost_ack"}))
    assert len(parts) == 2 and all(p.pieces == 3 and "lost_ack" in p.faults for p in parts)
    packets = [parse_segment(f.segment) for p in parts for f in _frames(p.data)]
    assert [(p.flag, p.pnum, p.pno) for p in packets if isinstance(p, Packet)] == [(11, 2, 1), (11, 2, 2)]
    _, memory, _ = _deliver(*(p.data for p in parts))
    assert memory.readings[-1].values == VALUES


def test_periods_units_and_encryption() -> None:
    station = water_station(codes={"w01014": {"metric": "conductivity", "unit": "mS/cm"}})
    encoder = StationEncoder(station, PASSWORD, version=2, sm4_key=TEST_KEY)
    values = {"ph": (7.1, 7.2, 7.3), "conductivity": (300.0, 310.0, 320.0)}
    (out,) = encoder.data("hour", MOMENT.replace(minute=0), values)
    assert b"CP=&&{0x" in out.data
    memory = MemoryDownstream()
    gateway = Gateway(book(air_station(), station, key=TEST_KEY), memory, clock=lambda: NOW)

    async def run() -> None:
        for event in Framer().feed(out.data):
            await gateway.handle(event, FakeLink())

    asyncio.run(run())
    (reading,) = memory.readings
    assert reading.values == {"ph": 7.2, "conductivity": pytest.approx(310.0)} and reading.period == "hour"


def test_fault_plan_draws_by_rate_and_refuses_unknown_kinds() -> None:
    plan = FaultPlan({"plus6": 0.5}, always=frozenset({"swapped_crc"}), seed=3)
    drawn = [plan.draw() for _ in range(400)]
    assert all("swapped_crc" in d for d in drawn)
    assert 120 < plan.counts["plus6"] < 280
    assert set(FAULTS) >= set(plan.counts)
    with pytest.raises(ValueError, match="unknown HJ 212 faults"):
        FaultPlan({"gremlins": 1.0})  # type: ignore[dict-item]


def test_aggregator_closes_minute_and_hour_periods_with_flags() -> None:
    agg = Aggregator(minute_interval_min=10)
    start = datetime(2026, 11, 30, 1, 55, tzinfo=BEIJING)
    closed = []
    for i in range(70):  # 01:55 .. 03:04, one value a minute
        moment = start + timedelta(minutes=i)
        flags = {"so2": "C" if calibrating(moment) else "N"}
        closed += agg.add(moment, {"so2": float(i)}, flags)
    kinds = [(k, s.strftime("%H:%M")) for k, s, _, _ in closed]
    assert kinds[0] == ("minute", "01:50") and ("hour", "01:00") in kinds and ("hour", "02:00") in kinds
    by_start = {(k, s.strftime("%H:%M")): (stats, flags) for k, s, stats, flags in closed}
    # 02:00-02:10 is inside the daily calibration: the period is flagged C; 02:00-03:00 still N (≥ 75 %).
    assert by_start[("minute", "02:00")][1] == {"so2": "C"}
    assert by_start[("hour", "02:00")][1] == {"so2": "N"}
    assert by_start[("minute", "02:10")][0]["so2"] == (15.0, 19.5, 24.0)
