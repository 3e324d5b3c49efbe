"""The event clock of the rules service trails the newest event by the lateness bound and the arrival lag."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gulou.devices.contract import Reading
from gulou.devices.registry import Registry
from gulou.rules.model import load_rules
from gulou.rules.service import RulesService
from gulou.settings import Settings

T0 = datetime(2026, 5, 1, 8, tzinfo=UTC)


def _reading(registry: Registry, device_id: str, ts: datetime) -> Reading:
    device = registry.get(device_id)
    assert device is not None
    return Reading(device=device, ts=ts, seq=None, values={"occupied_spots": 10, "total_spots": 100})


def test_lagging_readings_hold_the_clock_back_so_no_device_looks_silent(registry: Registry) -> None:
    service = RulesService(Settings(), registry, load_rules(), channels=[], clock="event", lateness_s=60)
    service._process_one(_reading(registry, "pk-001", T0))
    service._process_one(_reading(registry, "pk-002", T0))
    assert service.now() == T0 - timedelta(seconds=60)
    # pk-001 runs 20 min ahead on its connection; pk-002's readings arrive 15 min behind it.
    for minute in range(1, 21):
        service._process_one(_reading(registry, "pk-001", T0 + timedelta(minutes=minute)))
        if minute > 5:
            service._process_one(_reading(registry, "pk-002", T0 + timedelta(minutes=minute - 15)))
    assert service.now() == T0 + timedelta(minutes=20) - timedelta(minutes=15, seconds=60)
    assert not [t for t in service.tick() if t.alert.device_id == "pk-002"]
