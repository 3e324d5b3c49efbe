"""Alert texts: a resolved alert says how it ended, parking-tight does not flap, no place is named twice."""

from __future__ import annotations

from datetime import timedelta

from gulou.devices.contract import Reading
from gulou.devices.registry import Registry
from gulou.rules.engine import Engine
from gulou.rules.model import load_rules
from tests.workflow_data import T0


def test_parking_tight_resolves_with_the_value_it_went_back_to(registry: Registry) -> None:
    lot = next(d for d in registry if d.type == "parking_lot")
    engine = Engine([r for r in load_rules() if r.id == "parking-tight"], registry)

    def occupancy(minutes: int, share: float) -> list[str]:
        total = 1000
        item = Reading(lot, T0 + timedelta(minutes=minutes), None,
                       {"total_spots": total, "occupied_spots": round(share * total)})
        return [f"{t.event}:{t.alert.value}" for t in engine.process(item)]

    assert occupancy(0, 0.912) == ["firing:0.912"]
    # Dipping just under 90 % is within the hysteresis band: no resolve, no new alert.
    assert occupancy(5, 0.895) == [] and occupancy(10, 0.905) == []
    resolved = engine.process(Reading(lot, T0 + timedelta(minutes=75), None,
                                      {"total_spots": 1000, "occupied_spots": 800}))
    assert [t.event for t in resolved] == ["resolved"]
    alert = resolved[0].alert
    assert alert.value == 0.8 and "数值回到0.8" in alert.message and "持续1小时15分" in alert.message
    assert "91%" not in alert.message and "value back to 0.8" in alert.message_en


def test_no_default_message_names_a_place_twice(registry: Registry) -> None:
    from gulou.rules.alerts import render

    for rule in load_rules():
        devices = [d for d in registry if d.domain == rule.domain and
                   (rule.device_type is None or d.type == rule.device_type)][:3]
        for device in devices:
            text = render(rule.message, {"site_name": device.site.name, "device_name": device.name,
                                         "device": device.id, "site": device.site.id, "street": device.street})
            assert text.count(device.site.name) <= 1, f"{rule.id}: {text}"
