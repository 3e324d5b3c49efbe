"""The gateway's decisions: what is delivered, refused, answered, and when the 9014 goes out."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from gulou.hj212 import build
from gulou.hj212.convert import StationReading
from gulou.hj212.decode import REASONS
from gulou.hj212.downstream import DeadLetter, Downstream, DownstreamError, MemoryDownstream
from gulou.hj212.framing import Framer
from gulou.hj212.gateway import Gateway, GatewayOptions
from gulou.hj212.sm4 import TEST_KEY, encrypt_area
from gulou.hj212.stations import StationBook
from tests.unit.hj212.samples import (
    AIR_MN,
    HEARTBEAT_2025,
    NOW,
    SAMPLE_A,
    SAMPLE_A_REPLY,
    SAMPLE_A_WIRE,
    SAMPLE_B_REPLY,
    SAMPLE_B_WIRE,
    air_packet,
    air_station,
    book,
    water_station,
)


class FakeLink:
    """Collects what the gateway sends back."""

    def __init__(self, peer: str = "192.0.2.10:40000") -> None:
        self.peer = peer
        self.sent: list[bytes] = []

    async def send(self, data: bytes) -> None:
        self.sent.append(data)

    def cns(self) -> list[str]:
        return [d.split(b"CN=", 1)[1][:4].decode() for d in self.sent]


class OrderCheckingDownstream(Downstream):
    """Records the order of deliveries relative to what the link had sent at that moment."""

    def __init__(self, link: FakeLink) -> None:
        self.link = link
        self.replies_before: list[int] = []
        self.letters: list[DeadLetter] = []

    async def deliver(self, readings: Sequence[StationReading]) -> None:
        await asyncio.sleep(0)
        self.replies_before.append(len(self.link.sent))

    async def reject(self, letter: DeadLetter) -> None:
        self.letters.append(letter)


def _run(gateway: Gateway, link: FakeLink, *wires: bytes) -> None:
    async def go() -> None:
        framer = Framer()
        for wire in wires:
            for event in framer.feed(wire):
                await gateway.handle(event, link)
        for event in framer.close():
            await gateway.handle(event, link)

    asyncio.run(go())


def _gateway(stations: StationBook | None = None, downstream: Downstream | None = None,
             **options: object) -> tuple[Gateway, MemoryDownstream]:
    memory = MemoryDownstream()
    gateway = Gateway(stations or book(), downstream or memory, GatewayOptions(**options),  # type: ignore[arg-type]
                      clock=lambda: NOW)
    return gateway, memory


def _balanced(gateway: Gateway) -> None:
    acc = gateway.accounting
    assert acc.in_flight == 0
    assert acc.received == sum(acc.outcomes.values())


def test_sample_a_is_delivered_then_answered_byte_for_byte() -> None:
    gateway, memory = _gateway()
    link = FakeLink()
    _run(gateway, link, SAMPLE_A_WIRE)
    assert link.sent == [SAMPLE_A_REPLY]
    (reading,) = memory.readings
    assert reading.device_id == "aq-001" and reading.flags["so2"] == "C"
    assert gateway.accounting.outcomes["delivered"] == 1
    _balanced(gateway)


def test_the_9014_follows_the_delivery() -> None:
    link = FakeLink()
    downstream = OrderCheckingDownstream(link)
    gateway, _ = _gateway(downstream=downstream)
    _run(gateway, link, SAMPLE_A_WIRE)
    assert downstream.replies_before == [0] and link.sent == [SAMPLE_A_REPLY]


def test_no_9014_when_downstream_refuses_and_the_resend_is_delivered() -> None:
    gateway, memory = _gateway()
    link = FakeLink()
    memory.fail = True
    _run(gateway, link, SAMPLE_A_WIRE)
    assert link.sent == [] and gateway.accounting.outcomes["failed"] == 1
    memory.fail = False
    _run(gateway, link, SAMPLE_A_WIRE)
    assert link.sent == [SAMPLE_A_REPLY] and len(memory.readings) == 1
    _balanced(gateway)


def test_a_resend_after_a_lost_9014_is_delivered_once_and_answered_again() -> None:
    gateway, memory = _gateway()
    link = FakeLink()
    _run(gateway, link, SAMPLE_A_WIRE, SAMPLE_A_WIRE, SAMPLE_A_WIRE)
    assert len(memory.readings) == 1
    assert link.sent == [SAMPLE_A_REPLY] * 3
    assert gateway.accounting.outcomes["duplicate"] == 2
    assert gateway.accounting.stations[AIR_MN].duplicates == 2
    # Same DataTime, different values (a correction): delivered again, the store keeps the latest.
    _run(gateway, link, air_packet(values="a34004-Rtd=40,a34004-Flag=N"))
    _run(gateway, link, air_packet(values="a34004-Rtd=41,a34004-Flag=N"))
    assert [r.values.get("pm25") for r in memory.readings[1:]] == [40.0, 41.0]


def test_no_answer_when_the_flag_asks_for_none() -> None:
    gateway, memory = _gateway()
    link = FakeLink()
    _run(gateway, link, air_packet(flag=4))
    assert link.sent == [] and len(memory.readings) == 1


def test_water_sample_b_with_its_version_bits() -> None:
    gateway, memory = _gateway()
    link = FakeLink()
    _run(gateway, link, SAMPLE_B_WIRE)
    assert link.sent == [SAMPLE_B_REPLY] and memory.readings[0].period == "hour"


@pytest.mark.parametrize(("wire", "reason", "answered"), [
    (b"##0432" + SAMPLE_A + b"0000\r\n", "bad_crc", False),
    (air_packet(mn="UNKNOWN0001"), "unknown_mn", False),
    (air_packet(pw="654321"), "wrong_password", False),
    (air_packet(values="a34004-Rtd=1;=2"), "bad_cp", True),
    (air_packet(moment=""), "missing_datatime", True),
    (air_packet(moment="20261201093000"), "future_timestamp", True),
    (air_packet(values="a34004-Rtd=-3,a34004-Flag=N"), "out_of_range", True),
    (air_packet(values="a01007-Rtd=3,a01007-Flag=N"), "no_metrics", True),
    (b"##0432QN=1;broken", "truncated", False),
    (b"##xyz\r\n", "bad_header", False),
])
def test_refusals_become_dead_letters_byte_exact(wire: bytes, reason: str, answered: bool) -> None:
    gateway, memory = _gateway()
    link = FakeLink()
    _run(gateway, link, wire)
    (letter,) = memory.letters
    assert (letter.reason, letter.raw, letter.peer) == (reason, wire, link.peer)
    assert reason in REASONS
    # Content errors of a trusted packet are answered once recorded (else the station resends forever);
    # a packet that cannot be trusted is not.
    assert link.cns() == (["9014"] if answered else [])
    assert gateway.accounting.reasons == {reason: 1}
    assert not memory.readings
    _balanced(gateway)


def test_answering_dead_letters_is_configurable() -> None:
    gateway, memory = _gateway(ack_rejected=False)
    link = FakeLink()
    _run(gateway, link, air_packet(moment=""))
    assert link.sent == [] and len(memory.letters) == 1


def test_crc_variants_are_accepted_and_recorded_per_station_unless_refused() -> None:
    gateway, memory = _gateway()
    link = FakeLink()
    _run(gateway, link, build.frame(SAMPLE_A, variant="modbus_swapped"), build.frame(SAMPLE_B_WIRE[6:-6],
                                                                                    length_offset=6))
    assert len(memory.readings) == 2
    assert gateway.accounting.stations[AIR_MN].notes == {"crc:modbus_swapped": 1}
    assert gateway.accounting.stations["NM100000_0005"].notes == {"length:plus6": 1}
    strict, memory = _gateway(book(air_station(crc_variants=["standard"], accept_length_mismatch=False)))
    _run(strict, link, build.frame(SAMPLE_A, variant="modbus_swapped"), build.frame(SAMPLE_A, length_offset=9))
    assert [letter.reason for letter in memory.letters] == ["crc_variant", "bad_length"]


def test_wrong_system_code_is_noted_or_refused() -> None:
    wire = build.frame(SAMPLE_A.replace(b"ST=22", b"ST=31"))
    gateway, memory = _gateway()
    _run(gateway, FakeLink(), wire)
    assert len(memory.readings) == 1 and gateway.accounting.stations[AIR_MN].notes == {"st:31": 1}
    strict, memory = _gateway(book(air_station(strict_st=True)))
    _run(strict, FakeLink(), wire)
    assert [letter.reason for letter in memory.letters] == ["wrong_st"]


def test_heartbeat_is_answered_9013_and_counted() -> None:
    stations = book(air_station(st="21"))
    gateway, memory = _gateway(stations)
    link = FakeLink()
    _run(gateway, link, HEARTBEAT_2025)
    assert link.cns() == ["9013"] and b"QN=20261130093500000;ST=91;" in link.sent[0] and b"Flag=8;" in link.sent[0]
    assert gateway.accounting.stations[AIR_MN].heartbeats == 1
    assert gateway.accounting.outcomes["control"] == 1 and not memory.readings


def test_time_calibration_request_and_clock_upload() -> None:
    gateway, _ = _gateway()
    link = FakeLink()
    request = build.frame(build.segment(qn="20261130093000001", st="22", cn="1013", pw="123456", mn=AIR_MN, flag=5))
    _run(gateway, link, request)
    assert link.cns() == ["9013", "1012"]
    assert b"SystemTime=20261130093100" in link.sent[1]  # NOW in Beijing time
    # A 1011 upload 5 minutes slow: the offset is recorded and the clock set.
    upload = build.frame(build.segment(qn="20261130093000002", st="22", cn="1011", pw="123456", mn=AIR_MN, flag=4,
                                       cp="SystemTime=20261130092600"))
    link.sent.clear()
    _run(gateway, link, upload)
    assert gateway.accounting.stations[AIR_MN].clock_offset_s == -300.0 and link.cns() == ["1012"]
    assert asyncio.run(gateway.request_time(AIR_MN)) and link.cns()[-1] == "1011"
    assert not asyncio.run(gateway.request_time("NOT-CONNECTED"))


def test_split_messages_are_reassembled_and_each_part_answered() -> None:
    gateway, memory = _gateway()
    link = FakeLink()

    def part(pno: int, items: str) -> bytes:
        return build.frame(build.segment(qn=f"2026113009300000{pno}", st="22", cn="2011", pw="123456", mn=AIR_MN,
                                         flag=7, pnum=2, pno=pno, cp=f"DataTime=20261130093000;{items}"))

    _run(gateway, link, part(1, "a34004-Rtd=38.5,a34004-Flag=N"), part(2, "a21026-Rtd=9,a21026-Flag=C"))
    assert link.cns() == ["9014", "9014"]
    assert [r.values for r in memory.readings] == [{"pm25": 38.5}, {"pm25": 38.5, "so2": 9.0}]
    assert gateway.accounting.splits == {"complete": 1}


def test_several_stations_on_one_link_and_ignored_uploads() -> None:
    gateway, memory = _gateway()
    link = FakeLink()
    status = build.frame(build.segment(qn="1", st="22", cn="2021", pw="123456", mn=AIR_MN, flag=5,
                                       cp="DataTime=20261130093000;SB1-RS=1"))
    _run(gateway, link, SAMPLE_A_WIRE, SAMPLE_B_WIRE, status)
    assert {r.device_id for r in memory.readings} == {"aq-001", "wq-baima-01"}
    assert gateway.routes[AIR_MN] is link and gateway.routes["NM100000_0005"] is link
    assert gateway.accounting.outcomes["ignored"] == 1 and link.cns() == ["9014", "9014", "9014"]
    gateway.forget(link)
    assert not gateway.routes


def test_encrypted_data_areas() -> None:
    head, _, rest = SAMPLE_A.partition(b"CP=&&")
    encrypted = head + b"CP=&&" + encrypt_area(rest[:-2], TEST_KEY) + b"&&"
    # The CRC is computed over the plaintext; the length written is what is sent.
    wire = b"##%04d" % len(encrypted) + encrypted + b"A441\r\n"
    with_key, memory = _gateway(book(air_station(), water_station(), key=TEST_KEY))
    _run(with_key, FakeLink(), wire)
    assert memory.readings[0].values["pm25"] == 38.5 and not memory.letters
    no_key, memory = _gateway()
    _run(no_key, FakeLink(), wire)
    assert [letter.reason for letter in memory.letters] == ["encrypted_no_key"]
    wrong_key, memory = _gateway(book(air_station(), key=b"1" * 16))
    _run(wrong_key, FakeLink(), wire)
    assert [letter.reason for letter in memory.letters] == ["bad_crc"]
    mangled = wire.replace(b"{0x", b"{0xZZ,0x", 1)
    _run(with_key, FakeLink(), b"##%04d" % (len(mangled) - 12) + mangled[6:])
    assert with_key.accounting.reasons == {"bad_ciphertext": 1}


def test_downstream_failure_on_a_dead_letter_is_counted_not_answered() -> None:
    gateway, memory = _gateway()
    memory.fail = True
    link = FakeLink()
    _run(gateway, link, air_packet(moment=""))
    assert link.sent == [] and gateway.accounting.failed_reasons == {DownstreamError.__name__: 1}
    _balanced(gateway)


def test_back_filled_data_is_accepted_and_marked() -> None:
    gateway, memory = _gateway()
    link = FakeLink()
    backfill = build.frame(build.segment(qn="20261130093000999", st="22", cn="2061", pw="123456", mn=AIR_MN, flag=9,
                                         backfill=True, cp="DataTime=20261129080000;a34004-Avg=31.2,a34004-Flag=N"))
    _run(gateway, link, backfill)
    (reading,) = memory.readings
    assert reading.backfill and reading.period == "hour"
    assert reading.payload()["backfill"] is True and "backfill" not in memory.readings[0].payload(extended=False)
    # HJ 212-2025 version bits are echoed in the answer: Flag 9 → 8.
    assert link.cns() == ["9014"] and b";Flag=8;" in link.sent[0]


def test_an_internal_error_costs_one_packet_not_the_link() -> None:
    class Broken(MemoryDownstream):
        async def deliver(self, readings: Sequence[StationReading]) -> None:
            raise RuntimeError("a bug")

    link = FakeLink()
    gateway, _ = _gateway(downstream=Broken())
    _run(gateway, link, SAMPLE_A_WIRE, SAMPLE_B_WIRE)
    assert link.sent == [] and gateway.accounting.failed_reasons == {"internal_error": 2}
    _balanced(gateway)
