"""Hypothesis-generated TCP streams: never a crash, every packet accounted, every good packet delivered once."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gulou.hj212 import build
from gulou.hj212.crc import CRC_VARIANTS, crc_value
from gulou.hj212.downstream import MemoryDownstream
from gulou.hj212.framing import Framer
from gulou.hj212.gateway import Gateway
from tests.unit.hj212.samples import AIR_MN, NOW, book
from tests.unit.hj212.test_gateway import FakeLink

# Noise never contains hex digits: four of them right after a packet could, about once in 16,000
# tries, form a CRC that matches a longer reading of a +6 length (the standard's 256-value CRC).
NOISE = st.binary(max_size=40).map(lambda b: bytes(c for c in b if chr(c) not in "0123456789abcdefABCDEF"))


@dataclass(frozen=True)
class Item:
    """One piece of the stream and what it should become."""

    data: bytes
    kind: str  # good, corrupt, garbage, noise
    minute: int = -1


def _segment(minute: int) -> bytes:
    moment = build.stamp(NOW - timedelta(hours=2) + timedelta(minutes=minute))
    return build.segment(qn=f"{minute:017d}", st="22", cn="2011", pw="123456", mn=AIR_MN, flag=5,
                         cp=f"DataTime={moment};a34004-Rtd={minute % 300}.5,a34004-Flag=N").encode()


@st.composite
def items(draw: st.DrawFn) -> list[Item]:
    out: list[Item] = []
    for minute in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["good", "good", "good", "corrupt", "garbage", "noise"]))
        segment = _segment(minute)
        if kind == "good":
            variant = draw(st.sampled_from(CRC_VARIANTS))
            plus6 = draw(st.booleans())
            # Without CR LF a packet is found by its length, so the two faults do not come together.
            crlf = plus6 or draw(st.booleans())
            wire = build.frame(segment, variant=variant, length_offset=6 if plus6 else 0,
                               lower_hex=draw(st.booleans()), crlf=crlf)
            out.append(Item(wire, "good", minute))
        elif kind == "corrupt":
            taken = {crc_value(segment, v) for v in CRC_VARIANTS}
            wrong = next(c for c in range(0x10000) if c not in taken)
            out.append(Item(b"##%04d" % len(segment) + segment + b"%04X" % wrong + b"\r\n", "corrupt"))
        elif kind == "garbage":
            body = draw(st.binary(max_size=60)).replace(b"#", b"").replace(b"\r\n", b"")
            out.append(Item(b"##" + body + b"\r\n", "garbage"))
        else:
            out.append(Item(draw(NOISE), "noise"))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items(), st.lists(st.integers(1, 200), max_size=30))
def test_any_stream_is_fully_accounted(pieces: list[Item], cuts: list[int]) -> None:
    stream = b"".join(p.data for p in pieces)
    chunks, pos = [], 0
    for size in cuts:
        chunks.append(stream[pos:pos + size])
        pos += size
    chunks.append(stream[pos:])
    memory = MemoryDownstream()
    gateway = Gateway(book(), memory, clock=lambda: NOW)
    link = FakeLink()

    async def run() -> None:
        framer = Framer()
        for chunk in chunks:
            for event in framer.feed(chunk):
                await gateway.handle(event, link)
        for event in framer.close():
            await gateway.handle(event, link)

    asyncio.run(run())
    acc = gateway.accounting
    assert acc.received == sum(acc.outcomes.values())
    good = sorted(p.minute for p in pieces if p.kind == "good")
    delivered = sorted(int(r.qn or "-1") for r in memory.readings)
    assert delivered == good
    assert acc.outcomes["delivered"] == len(good)
    assert acc.outcomes["rejected"] >= sum(p.kind == "corrupt" for p in pieces)
    assert link.cns().count("9014") == len(good)
    assert all(letter.raw.startswith(b"##") for letter in memory.letters)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600), st.lists(st.integers(1, 64), max_size=20))
def test_arbitrary_bytes_never_crash(data: bytes, cuts: list[int]) -> None:
    memory = MemoryDownstream()
    gateway = Gateway(book(), memory, clock=lambda: NOW)
    link = FakeLink()

    async def run() -> None:
        framer = Framer(max_segment=300)
        pos = 0
        for size in [*cuts, len(data)]:
            for event in framer.feed(data[pos:pos + size]):
                await gateway.handle(event, link)
            pos += size
        for event in framer.close():
            await gateway.handle(event, link)
        assert framer.buffered == 0

    asyncio.run(run())
    acc = gateway.accounting
    assert acc.received == sum(acc.outcomes.values()) == acc.outcomes["rejected"] + acc.outcomes["delivered"]
    assert len(memory.letters) == acc.outcomes["rejected"]
