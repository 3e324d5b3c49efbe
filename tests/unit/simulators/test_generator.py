"""The pure generator: determinism, ordering, statuses, intervals and contract validity."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta

import pytest

from gulou.devices.catalog import DOMAINS
from gulou.devices.contract import Decoder, Reading, Rejection, StatusUpdate
from gulou.devices.registry import Registry
from gulou.simulators import Generator, SimMessage, generate, load_scenario
from tests.unit.simulators.helpers import FAR_FUTURE, START


@pytest.fixture(scope="module")
def hour(registry: Registry) -> list[SimMessage]:
    """One simulated hour of the whole shipped registry with every incident scripted."""
    return list(generate(registry, load_scenario("incidents"), seed=7, start=START, sim_duration=3600))


def test_same_seed_and_start_give_byte_identical_streams(registry: Registry, hour: list[SimMessage]) -> None:
    again = list(generate(registry, load_scenario("incidents"), seed=7, start=START, sim_duration=3600))
    assert [(m.sim_time, m.topic, m.payload, m.retain, m.qos) for m in again] == \
        [(m.sim_time, m.topic, m.payload, m.retain, m.qos) for m in hour]


def test_another_seed_gives_another_stream(registry: Registry, hour: list[SimMessage]) -> None:
    other = list(generate(registry, load_scenario("incidents"), seed=8, start=START, sim_duration=3600))
    changed = sum(1 for a, b in zip(hour, other, strict=False) if a.payload != b.payload)
    assert changed > len(hour) // 2


def test_end_is_the_same_as_a_simulated_duration(registry: Registry) -> None:
    by_end = [m.payload for m in generate(registry, seed=3, start=START, end=START + timedelta(minutes=10))]
    by_len = [m.payload for m in generate(registry, seed=3, start=START, sim_duration=600)]
    assert by_end == by_len


def test_stream_is_in_simulated_time_order_within_the_horizon(hour: list[SimMessage]) -> None:
    times = [m.sim_time for m in hour]
    assert times == sorted(times)
    assert times[0] == START and times[-1] == START + timedelta(hours=1)


def test_every_device_goes_online_first_and_offline_last(registry: Registry, hour: list[SimMessage]) -> None:
    first: dict[str, SimMessage] = {}
    last: dict[str, SimMessage] = {}
    for m in hour:
        first.setdefault(m.device_id, m)
        last[m.device_id] = m
    for device in registry:
        assert first[device.id].kind == "status" and first[device.id].retain
        assert json.loads(first[device.id].payload)["state"] == "online"
        assert last[device.id].kind == "status" and last[device.id].retain
        assert json.loads(last[device.id].payload)["state"] == "offline"


def test_each_device_reports_at_its_registry_interval(registry: Registry) -> None:
    messages = list(generate(registry, seed=1, start=START, sim_duration=7200))
    counts = Counter(m.device_id for m in messages if m.kind == "telemetry")
    times: dict[str, list[float]] = {}
    for m in messages:
        if m.kind == "telemetry":
            times.setdefault(m.device_id, []).append(m.sim_time.timestamp())
    for device in registry:
        expected = 7200 / device.interval_s
        assert expected - 1 <= counts[device.id] <= expected + 1, device.id
        gaps = {round(b - a) for a, b in zip(times[device.id], times[device.id][1:], strict=False)}
        assert gaps <= {device.interval_s}, device.id


def test_payloads_carry_local_rfc3339_time_and_a_sequence_per_device(hour: list[SimMessage]) -> None:
    seqs: dict[str, list[int]] = {}
    for m in hour:
        payload = json.loads(m.payload)
        assert payload["ts"].endswith("+08:00")
        if m.kind == "telemetry":
            assert payload["ts"] == m.sim_time.isoformat(timespec="seconds")
            seqs.setdefault(m.device_id, []).append(payload["seq"])
    for values in seqs.values():
        assert values == list(range(len(values)))


def test_every_generated_message_passes_the_decoder(registry: Registry, hour: list[SimMessage]) -> None:
    decoder = Decoder(registry)
    kinds: Counter[str] = Counter()
    for m in hour:
        result = decoder.decode(m.topic, m.payload, now=FAR_FUTURE)
        assert not isinstance(result, Rejection), (m.topic, m.payload, result)
        kinds[type(result).__name__] += 1
    assert kinds[Reading.__name__] > 7000 and kinds[StatusUpdate.__name__] >= 2 * len(registry)


def test_every_domain_is_published(hour: list[SimMessage]) -> None:
    assert {m.domain for m in hour if m.kind == "telemetry"} == set(DOMAINS)


def test_closing_early_sends_offline_once_for_devices_still_online(registry: Registry) -> None:
    gen = Generator(registry, seed=2, start=START)  # no horizon: endless
    taken = []
    for m in gen.messages():
        taken.append(m)
        if m.sim_time >= START + timedelta(minutes=5):
            break
    closing = gen.closing(START + timedelta(minutes=5))
    assert len(closing) == len(registry)
    assert all(m.retain and json.loads(m.payload)["state"] == "offline" for m in closing)
    assert gen.closing(START + timedelta(minutes=6)) == []


def test_status_payloads_carry_battery_for_battery_devices_only(registry: Registry, hour: list[SimMessage]) -> None:
    for m in hour[: len(registry)]:
        payload = json.loads(m.payload)
        battery_type = registry.devices[m.device_id].type in ("smart_bin", "structure_monitor", "sorting_point")
        assert ("battery" in payload) == battery_type
        assert -150 <= payload["rssi"] <= 0


def test_without_offline_at_end_devices_stay_online(registry: Registry) -> None:
    stream = list(generate(registry, seed=3, start=START, sim_duration=600, offline_at_end=False))
    states = [json.loads(m.payload)["state"] for m in stream if m.kind == "status"]
    assert states == ["online"] * len(registry)
    gen = Generator(registry, seed=3, start=START, offline_at_end=False)
    assert gen.closing(START + timedelta(minutes=5)) == []
