"""A device type added in one place: registered here only (the catalog patched for the test), a throwaway noise
monitor with its own domain and site kind goes through the contract, the registry, synthetic registries, the
simulator, rule files, the rules engine and dashboard generation without any other module knowing about it.

Its names carry a ``trial`` prefix so that a real noise monitor added to the catalog later does not collide."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import pytest

from gulou.dashboards.generate import BUILDERS, build_all
from gulou.devices.base import DeviceType, Metric, Value
from gulou.devices.catalog import CATALOG, domains, site_kinds
from gulou.devices.contract import Decoder, Reading, Rejection, StatusUpdate, telemetry_topic
from gulou.devices.registry import Device, Registry, parse_registry
from gulou.devices.synthetic import synthetic_registry
from gulou.rules.engine import Engine
from gulou.rules.model import parse_rules
from gulou.simulators import generate
from gulou.simulators.base import Active, Environment, Noise, Pattern, Values
from gulou.simulators.patterns import pattern_class
from gulou.simulators.scenario import Incident, Scenario, incident_types

START = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)


class NoiseMonitor(DeviceType):
    """Roadside environmental noise monitor (GB 3096 functional-zone monitoring)."""

    name: ClassVar[str] = "trial_noise_monitor"
    domain: ClassVar[str] = "trial_noise"
    description: ClassVar[str] = "Environmental noise monitor (LAeq, LAmax)"
    default_interval_s: ClassVar[int] = 60
    metrics: ClassVar[tuple[Metric, ...]] = (
        Metric("laeq", "dB(A)", "Equivalent continuous A-weighted sound level", minimum=20, maximum=140),
        Metric("lamax", "dB(A)", "Maximum A-weighted sound level", minimum=20, maximum=150),
    )
    site_kind: ClassVar[str] = "trial_noise_site"
    synthetic_share: ClassVar[float] = 0.05
    calm: ClassVar[Mapping[str, Value]] = {"laeq": 55.0, "lamax": 68.0}
    simulator: ClassVar[str] = f"{__name__}:NoisePattern"


class NoisePattern(Pattern):
    """Traffic noise: louder in the rush hours."""

    type_name: ClassVar[str] = "trial_noise_monitor"
    decimals: ClassVar[dict[str, int]] = {"laeq": 1, "lamax": 1}

    def __init__(self, device: Device, seed: int, env: Environment) -> None:
        super().__init__(device, seed, env)
        self.n_level = Noise(1.0, 1800)

    def sample(self, moment: datetime, offset_s: float, dt_s: float, active: Active) -> Values:
        """LAeq from traffic, LAmax a little above it."""
        laeq = 48.0 + 14.0 * self.env.traffic(moment) + self.noise(self.n_level, dt_s)
        return {"laeq": laeq, "lamax": laeq + 10.0 + abs(self.rng.gauss(0, 3))}


@pytest.fixture
def noise_type(monkeypatch: pytest.MonkeyPatch) -> Iterator[NoiseMonitor]:
    """The noise monitor in the catalog for one test (the catalog's derived tables follow it)."""
    monkeypatch.setitem(CATALOG, NoiseMonitor.name, NoiseMonitor())
    domains.cache_clear()
    site_kinds.cache_clear()
    try:
        yield NoiseMonitor()
    finally:
        monkeypatch.undo()
        domains.cache_clear()
        site_kinds.cache_clear()


def _registry() -> Registry:
    sites = [{"id": "noise-wusi", "kind": "trial_noise_site", "name": "五四路噪声点位", "street": "温泉街道",
              "lat": 26.09, "lon": 119.31},
             {"id": "air-wusi", "kind": "air_site", "name": "五四路空气点位", "street": "温泉街道", "lat": 26.09,
              "lon": 119.31}]
    devices = [{"id": "noise-001", "type": "trial_noise_monitor", "site": "noise-wusi", "name": "五四路噪声监测仪"},
               {"id": "aq-001", "type": "air_station", "site": "air-wusi", "name": "五四路空气质量微站"}]
    return parse_registry({"sites": sites, "devices": devices}, "test")


@pytest.mark.usefixtures("noise_type")
def test_domain_and_site_kind_come_from_the_type() -> None:
    assert domains()[-1] == "trial_noise" and "trial_noise_site" in site_kinds()
    registry = _registry()
    device = registry.get("noise-001")
    assert device is not None and device.domain == "trial_noise" and device.interval_s == 60


def test_without_the_type_its_domain_and_site_kind_are_unknown() -> None:
    assert "trial_noise" not in domains()
    with pytest.raises(ValueError, match="unknown site kind 'trial_noise_site'"):
        _registry()


@pytest.mark.usefixtures("noise_type")
def test_contract_decodes_the_new_type() -> None:
    decoder = Decoder(_registry())
    now = START + timedelta(minutes=5)
    topic = telemetry_topic("trial_noise", "noise-001")
    ok = decoder.decode(topic, json.dumps({"ts": START.isoformat(), **NoiseMonitor.calm}).encode(), now=now)
    assert isinstance(ok, Reading) and ok.values == dict(NoiseMonitor.calm)
    loud = decoder.decode(topic, json.dumps({"ts": START.isoformat(), "laeq": 170.0}).encode(), now=now)
    assert isinstance(loud, Rejection) and loud.reason == "out_of_range"
    wrong = decoder.decode(telemetry_topic("air", "noise-001"), json.dumps({"ts": START.isoformat()}).encode(),
                           now=now)
    assert isinstance(wrong, Rejection) and wrong.reason == "domain_mismatch"


@pytest.mark.usefixtures("noise_type")
def test_simulator_models_the_new_type_and_it_can_go_silent() -> None:
    assert pattern_class("trial_noise_monitor") is NoisePattern
    assert "trial_noise_monitor" in incident_types("device_silent")
    registry = _registry()
    decoder = Decoder(registry)
    scenario = Scenario(name="t", incidents=[Incident(kind="device_silent", target="noise-wusi", at=1800,
                                                      duration=1200)])
    messages = list(generate(registry, scenario, seed=3, start=START, sim_duration=3600))
    noise = [m for m in messages if m.device_id == "noise-001"]
    readings = [decoder.decode(m.topic, m.payload, now=m.sim_time + timedelta(seconds=1)) for m in noise]
    values = [r.values for r in readings if isinstance(r, Reading)]
    assert 35 <= len(values) <= 45  # one a minute, silent for 20 of the 60 minutes
    assert all(20 <= v["laeq"] <= 140 and v["lamax"] >= v["laeq"] for v in values)
    states = [(r.online, r.battery) for r in readings if isinstance(r, StatusUpdate)]
    assert states[:2] == [(True, None), (False, None)]  # not battery-powered: no battery level


@pytest.mark.usefixtures("noise_type")
def test_synthetic_registries_include_the_new_type() -> None:
    sites, rows = synthetic_registry(400, seed=2)
    registry = parse_registry({"sites": sites, "devices": rows}, "synthetic")
    noise = [d for d in registry if d.type == "trial_noise_monitor"]
    total = sum(t.synthetic_share for t in CATALOG.values())
    assert len(noise) == math.floor(400 * NoiseMonitor.synthetic_share / total)
    assert {d.site.kind for d in noise} == {"trial_noise_site"} and len(registry) == 400


@pytest.mark.usefixtures("noise_type")
def test_a_rule_file_for_the_new_domain_validates_and_fires() -> None:
    rules = parse_rules("""
rules:
- id: noise-laeq-over-70
  kind: threshold
  domain: trial_noise
  device_type: trial_noise_monitor
  metric: laeq
  op: ">"
  limit: 70
  severity: low
  message: "{site_name}噪声{value:.1f}dB(A)，超过{limit}dB(A)"
  message_en: "{site_name}: noise {value:.1f} dB(A) above {limit} dB(A)"
  source: "GB 3096-2008 class 4a daytime 70 dB(A) [M]"
""", "noise.yaml")
    registry = _registry()
    device = registry.get("noise-001")
    assert device is not None
    engine = Engine(rules, registry)
    quiet = engine.process(Reading(device=device, ts=START, seq=None, values=dict(NoiseMonitor.calm)))
    loud = engine.process(Reading(device=device, ts=START + timedelta(minutes=1), seq=None,
                                  values={"laeq": 75.0, "lamax": 88.0}))
    assert not quiet and [t.alert.rule_id for t in loud] == ["noise-laeq-over-70"]


@pytest.mark.usefixtures("noise_type")
def test_dashboards_get_a_plain_board_for_the_new_domain() -> None:
    boards = build_all(_registry())
    assert set(boards) >= {*BUILDERS, "trial_noise.json"}
    board = boards["trial_noise.json"]
    queries = [t["query"] for p in board["panels"] for t in p["targets"]]
    assert board["uid"] == "gulou-trial_noise" and len(board["panels"]) == 2
    assert all('FROM "trial_noise"' in q for q in queries) and any('mean("laeq")' in q for q in queries)
