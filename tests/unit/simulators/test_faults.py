"""Fault injection: each kind at about its rate, deterministic, and refused (or not) by the Decoder as intended."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta

import pytest

from gulou.devices.contract import Decoder, Reading, Rejection
from gulou.devices.registry import Registry
from gulou.simulators import FAULT_KINDS, SimMessage, generate
from gulou.simulators.faults import check_rates
from tests.unit.simulators.helpers import FAR_FUTURE, START

RATE = 0.04
RATES: dict[str, float] = dict.fromkeys(FAULT_KINDS, RATE)


@pytest.fixture(scope="module")
def faulty(registry: Registry) -> list[SimMessage]:
    """Two simulated hours of the shipped registry with every fault kind at 4 %."""
    return list(generate(registry, seed=9, start=START, sim_duration=7200, fault_rates=RATES))


def test_each_kind_appears_at_about_its_rate(faulty: list[SimMessage]) -> None:
    readings = sum(1 for m in faulty if m.kind == "telemetry" and m.fault in (None, "malformed", "out_of_range",
                                                                               "late", "out_of_order"))
    counts = Counter(m.fault for m in faulty if m.fault)
    for kind in FAULT_KINDS:
        assert 0.7 * RATE * readings < counts[kind] < 1.3 * RATE * readings, (kind, counts[kind], readings)


def test_faults_are_deterministic_for_the_seed(registry: Registry, faulty: list[SimMessage]) -> None:
    again = list(generate(registry, seed=9, start=START, sim_duration=7200, fault_rates=RATES))
    assert [(m.topic, m.payload, m.fault) for m in again] == [(m.topic, m.payload, m.fault) for m in faulty]


@pytest.mark.parametrize(("kind", "reason"), [
    ("malformed", "malformed_json"), ("out_of_range", "out_of_range"), ("unknown_device", "unknown_device"),
])
def test_refused_kinds_are_rejected_with_the_expected_reason(registry: Registry, faulty: list[SimMessage],
                                                             kind: str, reason: str) -> None:
    decoder = Decoder(registry)
    faulted = [m for m in faulty if m.fault == kind]
    assert faulted
    for m in faulted:
        result = decoder.decode(m.topic, m.payload, now=FAR_FUTURE)
        assert isinstance(result, Rejection) and result.reason == reason, (m.payload, result)


def test_unflagged_messages_are_all_valid(registry: Registry, faulty: list[SimMessage]) -> None:
    decoder = Decoder(registry)
    for m in faulty:
        if m.fault is None:
            assert not isinstance(decoder.decode(m.topic, m.payload, now=FAR_FUTURE), Rejection)


def test_duplicates_repeat_the_previous_payload_and_are_valid(registry: Registry, faulty: list[SimMessage]) -> None:
    decoder = Decoder(registry)
    for i, m in enumerate(faulty):
        if m.fault == "duplicate":
            assert faulty[i - 1].payload == m.payload and faulty[i - 1].topic == m.topic
            assert isinstance(decoder.decode(m.topic, m.payload, now=FAR_FUTURE), Reading)


def test_late_messages_carry_a_timestamp_hours_in_the_past(registry: Registry, faulty: list[SimMessage]) -> None:
    decoder = Decoder(registry)
    for m in (m for m in faulty if m.fault == "late"):
        result = decoder.decode(m.topic, m.payload, now=FAR_FUTURE)
        assert isinstance(result, Reading)
        lag = m.sim_time - datetime.fromisoformat(json.loads(m.payload)["ts"])
        assert timedelta(hours=2) <= lag <= timedelta(hours=12)


def test_out_of_order_messages_follow_the_devices_next_reading(registry: Registry,
                                                                faulty: list[SimMessage]) -> None:
    decoder = Decoder(registry)
    horizon = START + timedelta(seconds=7200)
    swapped = 0
    for i, m in enumerate(faulty):
        if m.fault != "out_of_order":
            continue
        assert isinstance(decoder.decode(m.topic, m.payload, now=FAR_FUTURE), Reading)
        ts = datetime.fromisoformat(json.loads(m.payload)["ts"])
        interval = registry.devices[m.device_id].interval_s
        assert ts < m.sim_time  # held back: its own reading time has passed
        if m.sim_time < horizon:  # otherwise released with the final statuses
            assert m.sim_time - ts == timedelta(seconds=interval)
            assert faulty[i - 1].device_id.startswith(m.device_id) and faulty[i - 1].sim_time == m.sim_time
            swapped += 1
    assert swapped > 0


def test_no_faults_without_rates(registry: Registry) -> None:
    assert all(m.fault is None for m in generate(registry, seed=9, start=START, sim_duration=600))


@pytest.mark.parametrize(("rates", "message"), [
    ({"typo": 0.1}, "unknown fault kind 'typo'"),
    ({"late": 1.5}, "must lie in 0..1"),
    ({"late": 0.6, "duplicate": 0.6}, "more than 1"),
])
def test_bad_rates_are_refused(rates: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_rates(rates)
