"""The rules service writes an ``aqi`` line per closed station hour (HJ 633 by the hour's date), batched and retried."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gulou.devices.contract import Reading, StatusUpdate
from gulou.devices.registry import Registry
from gulou.rules.derived import AqiWriter
from gulou.rules.engine import Engine
from gulou.rules.hourly import HourlyAqi, HourlyValues, rate_hour
from gulou.rules.model import load_rules
from gulou.rules.service import RulesService
from gulou.settings import Settings
from gulou.tsdb.records import Point

FULL = {"pm25": 80.0, "pm10": 100.0, "so2": 10.0, "no2": 50.0, "o3": 120.0, "co": 0.8,
        "temperature": 12.5, "humidity": 70.0}


class FakeInflux:
    """Collects ``write_lines`` batches; fails the first ``fail_first`` calls like an unreachable server."""

    def __init__(self, fail_first: int = 0) -> None:
        self.batches: list[list[str]] = []
        self.fail_first = fail_first
        self.calls = 0

    def write_lines(self, lines: Iterable[str]) -> None:
        self.calls += 1
        if self.calls <= self.fail_first:
            raise ConnectionError("connection refused")
        self.batches.append(list(lines))

    @property
    def lines(self) -> list[str]:
        return [line for batch in self.batches for line in batch]


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def _reading(registry: Registry, device_id: str, ts: datetime, values: dict[str, float]) -> Reading:
    device = registry.get(device_id)
    assert device is not None
    return Reading(device=device, ts=ts, seq=None, values=dict(values))


def _hour(registry: Registry, device_id: str, start: datetime, values: dict[str, float],
          minutes: int = 60) -> list[Reading]:
    """One reading a minute for ``minutes`` minutes from ``start``."""
    return [_reading(registry, device_id, start + timedelta(minutes=m), values) for m in range(minutes)]


def _run(service: RulesService, items: list[object], tick: bool = False) -> None:
    async def main() -> None:
        task = asyncio.create_task(service.run())
        for item in items:
            assert service.offer(item)  # type: ignore[arg-type]
        assert await service.drain(timeout=10)
        if tick:
            service.tick()
            assert await service.drain(timeout=10)
        service.stop()
        await task

    asyncio.run(main())


def _hourly(device_id: str, start: datetime, **means: float) -> HourlyAqi:
    return rate_hour(HourlyValues(device_id, _ms(start), dict(means), {p: 60.0 for p in means}))


def test_closed_hours_become_aqi_lines_rated_by_the_standard_of_their_date(registry: Registry) -> None:
    influx = FakeInflux()
    service = RulesService(Settings(), registry, load_rules(), influx=influx, channels=[], clock="event")
    feb = datetime(2026, 2, 10, 2, tzinfo=UTC)  # 10:00 China time: HJ 633-2012
    # 2026-02-28 17:00 UTC is already 2026-03-01 01:00 in China: HJ 633-2026 applies.
    march = datetime(2026, 2, 28, 17, tzinfo=UTC)
    ozone = datetime(2026, 3, 5, 2, tzinfo=UTC)
    water = next(d for d in registry if d.domain == "water")
    air = registry.get("aq-001")
    assert air is not None
    items: list[object] = [
        *_hour(registry, "aq-001", feb, FULL),
        *_hour(registry, "aq-001", march, FULL),
        *_hour(registry, "aq-002", feb, {"pm25": 20.0, "pm10": 30.0}),
        *_hour(registry, "aq-004", feb, {"pm25": 20.0, "pm10": 30.0}, minutes=44),  # too short: no AQI
        StatusUpdate(device=air, ts=ozone, online=True, battery=None, rssi=None),
        _reading(registry, water.id, ozone, {"do": 6.0}),
        *(Point(device_id="aq-003", domain="air", type="air_station", street="东街街道", site="air-dj-03",
                ts_ms=_ms(ozone) + m * 60_000, values={"pm25": 30.0, "pm10": 40.0, "o3": 210.0, "no2": 40.0})
          for m in range(60)),
        # Readings an hour later close every hour above (the event clock's tick reaches them too).
        *(_reading(registry, d, ozone + timedelta(hours=2), {"pm25": 20.0}) for d in ("aq-001", "aq-002", "aq-003")),
    ]
    _run(service, items, tick=True)
    # By hand (standards.md §1): PM2.5 80 µg/m³ on the 2012 column 75–115 → 100 + 50/40 × 5 = 106.25 → 107;
    # PM10 100 → 75, SO2 1 h 10 → 4, NO2 1 h 50 → 25, O3 1 h 120 → 38, CO 1 h 0.8 → 8.
    # On the 2026 PM2.5 column 60–115: 100 + 50/55 × 20 = 118.2 → 119 (PM10 2026: 50 + 50/70 × 50 → 86).
    # PM2.5 20 → 28.6 → 29, PM10 30 → 30: AQI 30, 优, no primary pollutant.
    # O3 1 h 210 → 100 + 50/100 × 10 = 105 (PM2.5 30 → 43, PM10 40 → 40, NO2 40 → 20): primary O3.
    lines = sorted(line for line in influx.lines if int(line.rsplit(" ", 1)[1]) < _ms(ozone + timedelta(hours=1)))
    assert lines == sorted([
        'aqi,device=aq-001,site=air-wq-01,street=温泉街道 aqi=107i,level=3i,category="轻度污染",primary="pm25",'
        f'standard="HJ 633-2012 / GB 3095-2012",rated="co,no2,o3,pm10,pm25,so2" {_ms(feb)}',
        'aqi,device=aq-001,site=air-wq-01,street=温泉街道 aqi=119i,level=3i,category="轻度污染",primary="pm25",'
        f'standard="HJ 633-2026 / GB 3095-2026",rated="co,no2,o3,pm10,pm25,so2" {_ms(march)}',
        'aqi,device=aq-002,site=air-gx-02,street=鼓西街道 aqi=30i,level=1i,category="优",primary="",'
        f'standard="HJ 633-2012 / GB 3095-2012",rated="pm10,pm25" {_ms(feb)}',
        'aqi,device=aq-003,site=air-dj-03,street=东街街道 aqi=105i,level=3i,category="轻度污染",primary="o3",'
        f'standard="HJ 633-2026 / GB 3095-2026",rated="no2,o3,pm10,pm25" {_ms(ozone)}',
    ])
    stats = service.stats()["derived"]["aqi"]
    assert stats["unrated"] == 1 and stats["delivered"] == len(influx.batches) >= 1


def test_lines_are_batched_by_size_and_by_time(registry: Registry) -> None:
    influx = FakeInflux()
    writer = AqiWriter(influx, registry, batch_lines=3)
    start = datetime(2026, 5, 1, tzinfo=UTC)
    writer.observe_hours([_hourly("aq-001", start + timedelta(hours=h), pm25=40.0 + h) for h in range(7)])
    # Two full batches went to the delivery queue at once; one line waits for the periodic flush.
    assert writer.worker.queue.qsize() == 2 and writer.stats()["buffered"] == 1
    writer.flush()
    assert writer.worker.queue.qsize() == 3 and writer.stats()["buffered"] == 0

    async def deliver() -> None:
        worker = asyncio.create_task(writer.worker.run())
        assert await writer.settle(timeout=10)
        worker.cancel()

    asyncio.run(deliver())
    assert [len(b) for b in influx.batches] == [3, 3, 1]
    # PM2.5 40 and 41 µg/m³ on the 2026 column 35–60: 50 + 50/25 × 5 = 60 and 50 + 50/25 × 6 = 62.
    assert [line.split(" ")[1].split(",")[0] for line in influx.lines][:2] == ["aqi=60i", "aqi=62i"]


def test_a_failing_store_is_retried_then_the_batch_is_delivered(registry: Registry) -> None:
    influx = FakeInflux(fail_first=2)
    service = RulesService(Settings(), registry, [], influx=influx, channels=[], retry_backoff_s=0.01)
    start = datetime(2026, 5, 1, tzinfo=UTC)
    _run(service, [*_hour(registry, "aq-001", start, {"pm25": 35.0}),
                   _reading(registry, "aq-001", start + timedelta(minutes=70), {"pm25": 35.0})])
    stats = service.stats()["derived"]["aqi"]
    assert (stats["retries"], stats["delivered"], stats["kept"]) == (2, 1, 0)
    assert len(influx.lines) == 1 and " aqi=50i,level=1i," in influx.lines[0]


def test_unrateable_hours_are_counted_not_written(registry: Registry) -> None:
    influx = FakeInflux()
    writer = AqiWriter(influx, registry)
    engine = Engine([], registry, derive_always=writer.metrics)
    start = datetime(2026, 5, 1, tzinfo=UTC)
    for minute in range(71):
        engine.evaluate(_reading(registry, "aq-001", start + timedelta(minutes=minute), {"pm25": -5.0}))
    assert writer.observe_hours(engine.take_hours()) == []
    assert writer.stats()["unrated"] == 1 and writer.stats()["buffered"] == 0


def test_each_hour_is_rated_once_for_the_rules_and_the_series(registry: Registry,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # Count at the rating step inside the standard, whoever calls ``aqi()`` and however it was imported.
    aqi_module = importlib.import_module("gulou.rules.standards.aqi")
    calls: list[str] = []
    rate_all = aqi_module._rate_all

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append("rated")
        return rate_all(*args, **kwargs)

    monkeypatch.setattr(aqi_module, "_rate_all", counted)
    rules = [r for r in load_rules() if getattr(r, "metric", None) == "aqi"]
    assert rules, "the shipped rules rate the AQI"
    influx = FakeInflux()
    service = RulesService(Settings(), registry, rules, influx=influx, channels=[])
    start = datetime(2026, 5, 1, tzinfo=UTC)
    _run(service, [*_hour(registry, "aq-001", start, FULL), _reading(registry, "aq-001", start + timedelta(minutes=70),
                                                                     FULL)])
    assert calls == ["rated"] and len(influx.lines) == 1
