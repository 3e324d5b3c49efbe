"""A rules service with a real InfluxDB-protocol store (VictoriaMetrics) writes the hourly ``aqi`` series."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from gulou.devices.contract import Reading
from gulou.devices.registry import Registry
from gulou.rules.model import load_rules
from gulou.rules.service import RulesService
from gulou.settings import Settings
from gulou.sinks.influx import InfluxSink
from tests.tsdb import VictoriaMetrics

pytestmark = pytest.mark.integration


def test_rules_service_writes_the_aqi_series(victoria_metrics: VictoriaMetrics, registry: Registry) -> None:
    sink = InfluxSink(victoria_metrics.url, None, "gulou", None)
    service = RulesService(Settings(), registry, load_rules(), influx=sink, derived_flush_s=0.1)
    feb = datetime(2026, 2, 10, 2, tzinfo=UTC)  # HJ 633-2012
    march = datetime(2026, 3, 5, 2, tzinfo=UTC)  # HJ 633-2026
    readings = []
    # Hours of minute readings; a reading (no pollutant) 70 minutes after each hour's start closes it (the
    # lateness bound is 10 minutes).
    for device_id, start, pm25 in (("aq-001", feb, 80.0), ("aq-001", march, 80.0), ("aq-002", march, 20.0),
                                   ("aq-002", march + timedelta(hours=1), 150.0)):
        device = registry.get(device_id)
        assert device is not None
        readings += [Reading(device=device, ts=start + timedelta(minutes=m), seq=None,
                             values={"pm25": pm25, "temperature": 9.0}) for m in range(60)]
        readings.append(Reading(device=device, ts=start + timedelta(minutes=70), seq=None,
                                values={"temperature": 9.0}))

    async def main() -> None:
        task = asyncio.create_task(service.run())
        for reading in readings:
            assert service.offer(reading)
        assert await service.drain(timeout=20)
        service.stop()
        await task

    try:
        asyncio.run(main())
    finally:
        sink.close()
    assert service.stats()["derived"]["aqi"]["delivered"] >= 1
    series = {(s["metric"]["device"], s["metric"]["street"], s["metric"]["site"]): dict(
        zip(s["timestamps"], s["values"], strict=True)) for s in victoria_metrics.export("aqi_aqi")}
    ms = {name: int(ts.timestamp() * 1000) for name, ts in (("feb", feb), ("march", march))}
    # Hourly means, stamped at the hour's start. PM2.5 80: 2012 column 75–115 → 107; 2026 column 60–115 → 119.
    # PM2.5 20 → 29; 150 → 200 (both tables).
    assert series == {
        ("aq-001", "温泉街道", "air-wq-01"): {ms["feb"]: 107, ms["march"]: 119},
        ("aq-002", "鼓西街道", "air-gx-02"): {ms["march"]: 29, ms["march"] + 3_600_000: 200},
    }
    levels = {s["metric"]["device"]: s["values"] for s in victoria_metrics.export("aqi_level")}
    assert levels == {"aq-001": [3, 3], "aq-002": [1, 4]}
