"""Partitions by site and message ids derived from the message."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gulou.bus.codec import dead_id, decode, envelope, reading_id, status_id
from gulou.bus.partition import Partitioner, fnv1a32, partition_of
from gulou.devices.registry import Registry
from gulou.tsdb.records import DeadLetter, Point, StatusEvent

POINT = Point("aq-gd-001", "air", "air_station", "鼓东街道", "air-gudong", 1_767_225_600_000,
              {"pm25": 35.5, "pm10": 60}, seq=7, tags={"river": "白马河"})
STATUS = StatusEvent("aq-gd-001", "air", "鼓东街道", "air-gudong", 1_767_225_600_000, False, 3.6, -71.0)


def test_fnv1a32_matches_the_published_vectors() -> None:
    # The same hash as nats-server's partition() mapping, so a server-side mapping would agree.
    assert fnv1a32(b"") == 0x811C9DC5
    assert fnv1a32(b"a") == 0xE40C292C
    assert fnv1a32(b"foobar") == 0xBF9CF968


def test_partition_is_stable_and_in_range() -> None:
    assert partition_of("river-baima-01", 16) == fnv1a32(b"river-baima-01") % 16
    assert all(0 <= partition_of(f"site-{i}", 7) < 7 for i in range(200))
    with pytest.raises(ValueError):
        partition_of("x", 0)


def test_every_device_of_a_site_shares_its_partition(registry: Registry) -> None:
    parts = Partitioner(registry, 16)
    for device in registry:
        assert parts.for_device(device.id) == parts.for_site(device.site.id)
    assert parts.for_device("not-registered") is None
    assert parts.for_device(None) is None
    # The shipped sites spread over every one of 16 partitions.
    assert set(Counter(parts.for_site(s) for s in registry.sites)) == set(range(16))


def test_records_round_trip_through_envelopes() -> None:
    letter = DeadLetter("gulou/air/x/telemetry", b"\xff{not json", "bad_json", "line 1", 1_767_225_601_000)
    for record, kind, partition in ((POINT, "reading", 3), (STATUS, "status", 3), (letter, "dead", None)):
        env = envelope(record, 3)
        assert (env.kind, env.partition) == (kind, partition)
        assert decode(env) == record


def test_ids_derive_from_the_message() -> None:
    assert reading_id(POINT) == "r:aq-gd-001:1767225600000"
    later = Point(**{**POINT.to_json(), "ts_ms": POINT.ts_ms + 1})
    assert reading_id(later) != reading_id(POINT)
    assert status_id(STATUS) != status_id(StatusEvent(**{**STATUS.to_json(), "online": True}))
    first = DeadLetter("t", b"payload", "bad_json", "d", 1)
    assert dead_id(first) == dead_id(DeadLetter("t", b"payload", "bad_json", "other detail", 1))
    # The same broken payload arriving again is another message, counted again as without a bus.
    assert dead_id(first) != dead_id(DeadLetter("t", b"payload", "bad_json", "d", 99_999))
    assert dead_id(first) != dead_id(DeadLetter("t", b"payload2", "bad_json", "d", 1))
    assert dead_id(first) != dead_id(DeadLetter("u", b"payload", "bad_json", "d", 1))


def test_a_body_that_does_not_match_its_kind_is_refused() -> None:
    env = envelope(POINT, 1)
    with pytest.raises(ValueError, match="undecodable"):
        decode(type(env)("status", 1, env.msg_id, env.body))
    with pytest.raises(ValueError, match="undecodable"):
        decode(type(env)("reading", 1, env.msg_id, b"\x00garbage"))


@given(topic=st.text(min_size=1, max_size=80), payload=st.binary(max_size=300), detail=st.text(max_size=80))
def test_any_rejected_message_survives_the_bus_whole(topic: str, payload: bytes, detail: str) -> None:
    letter = DeadLetter(topic, payload, "bad_json", detail, 5, None, None)
    assert decode(envelope(letter, None)) == letter
