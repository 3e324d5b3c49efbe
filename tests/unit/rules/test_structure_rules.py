"""Housing rules with the building's own facts: crack limits by structure type, the inclinometer's baseline."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from gulou.devices.registry import Registry, RegistryError, load_registry
from gulou.reports.city import housing
from gulou.rules.derive import derive
from gulou.rules.engine import Engine
from gulou.rules.model import load_rules
from tests.unit.rules.test_rules_engine import T0, at, reading

RULES = {r.id: r for r in load_rules()}
CALM = {"tilt_x": 0.0, "tilt_y": 0.0, "crack_width": 0.3, "settlement": -1.0, "vibration": 0.5}


def test_crack_limit_follows_the_structure_type(registry: Registry) -> None:
    concrete = next(d for d in registry if d.type == "structure_monitor" and d.site.structure_type == "concrete")
    masonry = next(d for d in registry if d.type == "structure_monitor" and d.site.structure_type == "masonry")
    engine = Engine([RULES["structure-crack-width"]], registry)
    # 0.6 mm: over the 0.5 mm of a concrete building, within the 1.0 mm of a masonry one.
    fired = engine.process(reading(concrete, T0, **{**CALM, "crack_width": 0.6}))
    assert [(t.alert.device_id, t.alert.limit) for t in fired] == [(concrete.id, 0.5)]
    assert engine.process(reading(masonry, T0, **{**CALM, "crack_width": 0.6})) == []
    assert [t.alert.limit for t in engine.process(reading(masonry, at(10), **{**CALM, "crack_width": 1.1}))] == [1.0]


def test_tilt_is_measured_from_the_installation_baseline(registry: Registry) -> None:
    plain = registry.get("st-005-ne")  # 3 storeys: tilt limit 2 %
    assert plain is not None and plain.site.storeys == 3
    mounted = replace(plain, tilt_baseline=(0.8, -0.3))
    # The sensor read 0.8° / -0.3° on the surveyed building: that reading is no lean at all.
    at_baseline = derive("tilt_ratio", {"tilt_x": 0.8, "tilt_y": -0.3}, mounted, T0)
    raw = derive("tilt_ratio", {"tilt_x": 0.8, "tilt_y": -0.3}, plain, T0)
    assert at_baseline is not None and raw is not None and at_baseline.value == 0.0
    assert raw.value == pytest.approx(math.hypot(math.tan(math.radians(0.8)), math.tan(math.radians(0.3))))
    leaning = derive("tilt_ratio", {"tilt_x": 0.8 + math.degrees(math.atan(0.021)), "tilt_y": -0.3}, mounted, T0)
    assert leaning is not None and leaning.value == pytest.approx(0.021)
    subset = Registry(sites=registry.sites, devices={mounted.id: mounted})
    engine = Engine([RULES["structure-tilt-red"]], subset)
    assert engine.process(reading(mounted, T0, **{**CALM, "tilt_x": 0.8 + 1.0, "tilt_y": -0.3})) == []
    fired = engine.process(reading(mounted, at(10), **{**CALM, "tilt_x": 0.8 + 1.2, "tilt_y": -0.3}))
    assert [t.alert.rule_id for t in fired] == ["structure-tilt-red"]  # tan 1.2° = 2.09 % > 2 %


def test_registry_takes_a_baseline_only_for_an_inclinometer(tmp_path: Path) -> None:
    shipped = Path(load_registry().source)
    text = shipped.read_text(encoding="utf-8")
    marked = text.replace("- id: st-001-ne\n  type: structure_monitor\n",
                          "- id: st-001-ne\n  type: structure_monitor\n  tilt_baseline: [0.25, -0.1]\n")
    assert marked != text
    path = tmp_path / "registry.yaml"
    path.write_text(marked, encoding="utf-8")
    device = load_registry(path).get("st-001-ne")
    assert device is not None and device.tilt_baseline == (0.25, -0.1)
    assert device.as_dict()["tilt_baseline"] == [0.25, -0.1]
    wrong = text.replace("- id: aq-001\n  type: air_station\n", "- id: aq-001\n  type: air_station\n"
                         "  tilt_baseline: [0.25, -0.1]\n")
    path.write_text(wrong, encoding="utf-8")
    with pytest.raises(RegistryError, match="no inclinometer"):
        load_registry(path)


def test_report_housing_uses_the_baseline(registry: Registry) -> None:
    device = registry.get("st-005-ne")
    assert device is not None
    mounted = replace(device, tilt_baseline=(1.0, 0.0))
    start = datetime(2026, 5, 1)
    frame = pl.DataFrame({"device_id": [device.id] * 2, "local": [start, start + timedelta(hours=1)],
                          "tilt_x": [1.0, 1.05], "tilt_y": [0.0, 0.0], "crack_width": [0.3, 0.3],
                          "settlement": [-1.0, -1.0], "vibration": [0.5, 0.5]})
    # Raw, 1.05° is tan 1.83 % of the 2 % limit (orange); from its 1.0° baseline it is 0.09 %: no warning.
    (raw,) = housing(frame, [device], start)
    (measured,) = housing(frame, [mounted], start)
    assert raw.tier == "orange" and measured.tier == "none"
