"""The gateway over real TCP: the reference exchange byte for byte, limits, several stations, bad input."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from gulou.hj212 import build
from gulou.hj212.downstream import Downstream, MemoryDownstream
from gulou.hj212.server import ServerLimits
from tests.integration.hj212.running import GatewayThread, Station, wait_until
from tests.unit.hj212.samples import (
    HEARTBEAT_2025,
    SAMPLE_A_REPLY,
    SAMPLE_A_WIRE,
    SAMPLE_B_REPLY,
    SAMPLE_B_WIRE,
    air_station,
    book,
    water_station,
)

pytestmark = pytest.mark.integration


def _memory() -> tuple[MemoryDownstream, Callable[[], Awaitable[Downstream]]]:
    memory = MemoryDownstream()

    async def factory() -> Downstream:
        return memory

    return memory, factory


def test_reference_exchange_split_and_coalesced() -> None:
    memory, factory = _memory()
    with GatewayThread(book(air_station(st="21"), water_station()), factory) as gw:
        station = Station(gw.port)
        # Sample A in three TCP writes, then sample B and a 2025 heartbeat in one.
        station.send(SAMPLE_A_WIRE[:7], SAMPLE_A_WIRE[7:300], SAMPLE_A_WIRE[300:])
        station.send(SAMPLE_B_WIRE + HEARTBEAT_2025)
        replies = station.replies(3)
        station.close()
        wait_until(lambda: gw.stats()["connections"]["open"] == 0, 10, "the link to close")
        stats = gw.stats()
    assert replies[:2] == [SAMPLE_A_REPLY, SAMPLE_B_REPLY]
    assert b"CN=9013" in replies[2] and b"QN=20261130093500000;ST=91;" in replies[2]
    assert [r.device_id for r in memory.readings] == ["aq-001", "wq-baima-01"]
    packets = stats["packets"]
    assert packets["received"] == 3 and packets["in_flight"] == 0
    assert packets["received"] == sum(packets[k] for k in ("delivered", "duplicate", "rejected", "control",
                                                          "ignored", "failed"))


def test_limits_on_connections_idle_time_and_packet_size() -> None:
    memory, factory = _memory()
    limits = ServerLimits(max_connections=2, idle_timeout_s=1.0, max_segment=600)
    with GatewayThread(book(), factory, limits) as gw:
        first, second = Station(gw.port), Station(gw.port)
        wait_until(lambda: gw.stats()["connections"].get("accepted") == 2, 10, "two links accepted")
        third = Station(gw.port)
        third.wait_closed()
        assert gw.stats()["connections"]["refused"] == 1
        # A packet beyond the size limit is refused with its reason; the link and the stream survive.
        big = build.frame(SAMPLE_B_WIRE[6:-8] + b";x=" + b"1" * 700 + b"&&")
        first.send(big + SAMPLE_B_WIRE)
        assert first.replies(1) == [SAMPLE_B_REPLY]
        assert [letter.reason for letter in memory.letters] == ["too_long"]
        assert memory.letters[0].raw == big
        # Silent links are closed after the idle time.
        first.wait_closed()
        second.wait_closed()
        stats = gw.stats()
    assert stats["connections"]["idle_closed"] == 2
    assert stats["packets"]["rejected"] == 1 and stats["packets"]["delivered"] == 1


def test_garbage_and_probes_never_stop_the_server() -> None:
    _, factory = _memory()
    with GatewayThread(book(), factory) as gw:
        probe = Station(gw.port)
        probe.send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", bytes(range(256)), b"##9999\xff\xfe")
        probe.close()
        station = Station(gw.port)
        station.send(b"\x00\x01##12##" + SAMPLE_B_WIRE)
        assert station.replies(1) == [SAMPLE_B_REPLY]
        wait_until(lambda: gw.stats()["packets"]["in_flight"] == 0, 10, "every packet accounted")
        stats = gw.stats()
    assert stats["packets"]["delivered"] == 1
    assert stats["bytes"]["noise"] > 0
    assert set(stats["by_reason"]) <= {"bad_header", "truncated", "bad_crc_field"}
    assert stats["connections"].get("error", 0) == 0
