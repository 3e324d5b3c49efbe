"""The contract's station fields (period, flags, backfill) and the registry's HJ 212 block."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from gulou.devices.catalog import CATALOG
from gulou.devices.contract import Decoder, Reading, Rejection
from gulou.devices.registry import DEFAULT_VALID_FLAGS, Registry, RegistryError, parse_registry

NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
SITE = {"id": "air-gd-01", "kind": "air_site", "name": "测试点", "street": "鼓东街道", "lat": 26.08, "lon": 119.3}
WATER_SITE = {"id": "baima-01", "kind": "river_section", "name": "白马河", "street": "洪山镇", "lat": 26.07,
              "lon": 119.26, "river": "白马河", "target_class": "IV"}


def _registry(*devices: dict[str, Any]) -> Registry:
    return parse_registry({"sites": [SITE, WATER_SITE], "devices": list(devices)}, "test")


def _air(device_id: str = "aq-001", **extra: Any) -> dict[str, Any]:
    return {"id": device_id, "type": "air_station", "site": "air-gd-01", "name": device_id, **extra}


REG = _registry(_air("aq-001", hj212={"mn": "350102A001", "kind": "evaluation", "valid_flags": ["N", "S"]}),
                _air("aq-002", hj212={"mn": "350102M002", "kind": "micro"}), _air("aq-003"))
DECODER = Decoder(REG)


def _decode(device: str, body: dict[str, Any]) -> Reading | Rejection:
    payload = {"ts": "2026-11-30T09:00:00+08:00", **body}
    result = DECODER.decode(f"gulou/air/{device}/telemetry", json.dumps(payload).encode(), NOW)
    assert not isinstance(result, Reading) or result.device.id == device
    return result  # type: ignore[return-value]


def test_a_payload_without_station_fields_is_a_real_time_reading() -> None:
    reading = _decode("aq-003", {"pm25": 35.0})
    assert isinstance(reading, Reading)
    assert (reading.period, reading.flags, reading.invalid, reading.backfill) == ("rtd", {}, {}, False)
    assert reading.source == "mqtt"
    assert reading.values == {"pm25": 35.0}


def test_values_with_an_invalid_flag_are_kept_apart_with_their_flag() -> None:
    reading = _decode("aq-003", {"period": "hour", "pm25": 35.0, "so2": 9.0, "no2": 30.0,
                                 "flags": {"pm25": "N", "so2": "C"}})
    assert isinstance(reading, Reading)
    assert reading.period == "hour" and reading.source == "hj212"  # the gateway's payloads carry the period
    # so2 was calibrating: not a measurement; no2 carries no flag, which counts as valid.
    assert reading.values == {"pm25": 35.0, "no2": 30.0}
    assert reading.invalid == {"so2": 9.0}
    assert reading.flags == {"pm25": "N", "so2": "C"}


def test_the_stations_valid_flags_decide() -> None:
    hand = {"pm25": 35.0, "so2": 9.0, "flags": {"pm25": "S", "so2": "N"}, "backfill": True}
    configured = _decode("aq-001", hand)
    default = _decode("aq-002", hand)
    assert isinstance(configured, Reading) and isinstance(default, Reading)
    assert configured.values == {"pm25": 35.0, "so2": 9.0} and configured.invalid == {}
    assert default.values == {"so2": 9.0} and default.invalid == {"pm25": 35.0}
    assert configured.backfill and default.backfill


@pytest.mark.parametrize(("body", "reason", "where"), [
    ({"pm25": 1.0, "flags": {"speed": "N"}}, "unknown_field", "flags.speed"),
    ({"pm25": 1.0, "flags": {"pm25": "NN"}}, "wrong_type", "flags.pm25"),
    ({"pm25": 1.0, "flags": {"pm25": "n"}}, "wrong_type", "flags.pm25"),
    ({"pm25": 1.0, "flags": ["N"]}, "wrong_type", "flags"),
    ({"pm25": 1.0, "period": "week"}, "wrong_type", "period"),
    ({"pm25": 1.0, "backfill": "yes"}, "wrong_type", "backfill"),
    ({"flags": {"pm25": "N"}, "period": "hour"}, "no_metrics", "payload"),
])
def test_bad_station_fields_are_rejected_with_a_reason(body: dict[str, Any], reason: str, where: str) -> None:
    result = _decode("aq-003", body)
    assert isinstance(result, Rejection)
    assert result.reason == reason and where in result.detail


def test_flags_are_not_metrics() -> None:
    model = CATALOG["water_station"].payload_model
    payload = model.model_validate({"ts": 1_780_000_000_000, "ph": 7.2, "flags": {"ph": "N", "do": "D"},
                                    "period": "day", "backfill": False})
    assert payload.metrics() == {"ph": 7.2}
    assert payload.data_flags() == {"ph": "N", "do": "D"}


def test_registry_block_marks_evaluation_and_micro_stations() -> None:
    evaluation, micro, plain = REG.get("aq-001"), REG.get("aq-002"), REG.get("aq-003")
    assert evaluation is not None and micro is not None and plain is not None
    assert evaluation.evaluation_station and not micro.evaluation_station and not plain.evaluation_station
    assert evaluation.hj212 is not None and evaluation.hj212.device_id == "aq-001"
    assert evaluation.hj212.device_type == "air_station" and evaluation.hj212.system_code == "22"
    assert plain.valid_flags == DEFAULT_VALID_FLAGS == frozenset("N")
    assert evaluation.valid_flags == frozenset("NS")
    assert evaluation.as_dict()["hj212_mn"] == "350102A001" and micro.as_dict()["station"] == "micro"


def test_registry_block_code_overrides_are_checked_against_the_type() -> None:
    ok = _registry({"id": "wq-1", "type": "water_station", "site": "baima-01", "name": "w",
                    "hj212": {"mn": "NM100000_0005", "st": "21", "codes": {"w01003": {"metric": "turbidity"},
                                                                          "w01014": {"metric": "conductivity",
                                                                                     "unit": "mS/cm"}}}})
    station = ok.devices["wq-1"].hj212
    assert station is not None and station.resolved()["w01014"].factor == 1000.0
    with pytest.raises(RegistryError, match=r"device 'wq-1': hj212: .*water_station has no metric 'pm25'"):
        _registry({"id": "wq-1", "type": "water_station", "site": "baima-01", "name": "w",
                   "hj212": {"mn": "NM1", "codes": {"a34004": {"metric": "pm25"}}}})


@pytest.mark.parametrize(("block", "message"), [
    ({"mn": "A B"}, "mn: String should match pattern"),
    ({"mn": "M1", "kind": "national"}, "kind: Input should be 'evaluation' or 'micro'"),
    ({"mn": "M1", "device_id": "other"}, "device_id is the device's own"),
    ({"mn": "M1", "valid_flags": ["Q"]}, "unknown data flags"),
    ({"mn": "M1", "pasword": "x"}, "pasword: Extra inputs are not permitted"),
    ("M1", "hj212 must be a mapping"),
])
def test_bad_registry_blocks_name_the_problem(block: Any, message: str) -> None:
    with pytest.raises(RegistryError, match=message):
        _registry(_air("aq-001", hj212=block))


def test_a_block_on_a_type_that_is_no_station_is_refused() -> None:
    bin_site = {"id": "cp-gd-001", "kind": "collection_point", "name": "点", "street": "鼓东街道", "lat": 26.08,
                "lon": 119.3}
    with pytest.raises(RegistryError, match="device_type"):
        parse_registry({"sites": [bin_site], "devices": [{"id": "bin-1", "type": "smart_bin", "site": "cp-gd-001",
                                                          "name": "b", "category": "厨余垃圾",
                                                          "hj212": {"mn": "M1"}}]}, "test")


def test_one_mn_feeds_one_device() -> None:
    with pytest.raises(RegistryError, match="MN M1 is already the station of 'aq-001'"):
        _registry(_air("aq-001", hj212={"mn": "M1"}), _air("aq-002", hj212={"mn": "M1"}))



def test_reports_take_the_registry_evaluation_label() -> None:
    from gulou.reports.stations import certified, evaluation_stations, indicative

    assert [d.id for d in evaluation_stations(REG)] == ["aq-001"]
    assert certified(REG.devices["aq-001"]) and indicative(REG.devices["aq-002"])
