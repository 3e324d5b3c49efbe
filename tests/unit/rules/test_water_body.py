"""Lakes (西湖, 左海) are classed on GB 3838's lake TP column: the registry records the water body."""

from __future__ import annotations

from gulou.devices.registry import Registry
from gulou.rules.derive import derive
from tests.unit.rules.test_rules_engine import T0

LAKES = {"xihu-01", "xihu-02", "zuohai-01"}


def test_registry_marks_the_lakes(registry: Registry) -> None:
    water_sites = {d.site.id: d.site for d in registry if d.domain == "water"}
    assert {s for s, site in water_sites.items() if site.water_body == "lake"} == LAKES
    assert all(site.water_body is None for s, site in water_sites.items() if s not in LAKES)
    device = registry.get("wq-xihu-01")
    assert device is not None and device.as_dict()["water_body"] == "lake"


def test_lake_tp_is_rated_on_the_lake_column(registry: Registry) -> None:
    lake, river = registry.get("wq-xihu-01"), registry.get("wq-baima-01")
    assert lake is not None and river is not None
    # TP 0.2 mg/L: class III for a river (≤ 0.2) but class V for a lake (≤ 0.2 on the lake column, IV ≤ 0.1).
    values = {"ph": 7.2, "do": 7.0, "codmn": 3.0, "nh3n": 0.3, "tp": 0.2}
    lake_class, river_class = derive("water_class", values, lake, T0), derive("water_class", values, river, T0)
    assert lake_class is not None and river_class is not None
    assert (river_class.label, lake_class.label) == ("III", "V")
