"""The rules judge real-time values: a station's period means are stored, never evaluated."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from gulou.devices.contract import Reading
from gulou.devices.registry import Registry
from gulou.rules.model import load_rules
from gulou.rules.service import RulesService
from gulou.settings import Settings


def test_only_real_time_readings_reach_the_engine(registry: Registry) -> None:
    async def offer() -> list[bool]:
        service = RulesService(Settings(), registry, load_rules(), channels=[])
        device = registry.devices["aq-001"]
        moment = datetime(2026, 11, 30, 1, tzinfo=UTC)
        taken = [service.offer(Reading(device, moment, None, {"pm25": 300.0}, period=period, source="hj212"))
                 for period in ("rtd", "minute", "hour", "day")]
        assert service.queue.qsize() == 1 and service.dropped == 0
        return taken

    assert asyncio.run(offer()) == [True, False, False, False]
