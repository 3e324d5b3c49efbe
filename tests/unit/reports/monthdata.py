"""A generated month (May 2026) of readings with values chosen so every report figure can be computed by hand.

Air (three stations, one reading a minute, each hour's values constant so an hour's mean is that value):
pm25 = 20 + d (station a), 30 + d (b), 40 + d (c) on day d, so the district mean is 30 + d; pm10 40, so2 10,
no2 20, co 0.5, o3 80. Days that differ:
  7   heavy: pm25 160 / 170 / 180 (district 170)
  10  O3: every station 100 each hour except 250 at 14:00 (daily max 1 h 250, max 8 h 118.75)
  15  station c misses 00-04 (19 valid hours: its daily values are invalid)
  20  a misses 00-02 and has 44 minutes at 03 (value 500, invalid hour): exactly 20 valid hours;
      b has 45 minutes in every hour (all valid); c misses 00-03 and has 44 minutes at 04 (value 500): 19 hours
  25  no air data at all
  26  every station misses 00-04 (19 hours each)
Water (hourly), sorting points and building monitors (hourly) are described where they are generated.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

from gulou.devices.registry import Registry, parse_registry
from gulou.rules.standards import CHINA_TZ
from gulou.sinks.embedded import EmbeddedStore
from gulou.tsdb.records import Batch, Point

YEAR, MONTH, DAYS = 2026, 5, 31
STATIONS = {"aq-a": 20.0, "aq-b": 30.0, "aq-c": 40.0}  # pm25 offset per station
HEAVY = {"aq-a": 160.0, "aq-b": 170.0, "aq-c": 180.0}


def _site(site_id: str, kind: str, name: str, street: str, **extra: Any) -> dict[str, Any]:
    return {"id": site_id, "kind": kind, "name": name, "street": street, "lat": 26.08, "lon": 119.29, **extra}


def registry() -> Registry:
    """Three air stations, three water sections (one drinking source), two sorting points, two buildings."""
    return parse_registry(registry_doc(), "monthdata")


def registry_doc() -> dict[str, list[dict[str, Any]]]:
    """The registry of ``registry()`` as the YAML document's data (sites and devices)."""
    sites = [
        _site("air-a", "air_site", "甲站点位", "鼓东街道"), _site("air-b", "air_site", "乙站点位", "鼓西街道"),
        _site("air-c", "air_site", "丙站点位", "温泉街道"),
        _site("baima-t1", "river_section", "白马河测试段", "鼓西街道", river="白马河", target_class="IV"),
        _site("dongxi-t1", "river_section", "东西河测试段", "华大街道", river="东西河", target_class="IV"),
        _site("minjiang-t1", "river_section", "闽江取水口测试段", "洪山镇", river="闽江", target_class="II",
              drinking_source=True),
        _site("cp-t1", "collection_point", "测试投放点一", "鼓东街道"),
        _site("cp-t2", "collection_point", "测试投放点二", "鼓西街道"),
        _site("bldg-t1", "building", "测试楼一", "南街街道", storeys=6, structure_type="concrete", grade="C"),
        _site("bldg-t2", "building", "测试楼二", "南街街道", storeys=2, structure_type="masonry", grade="B"),
    ]
    devices: list[dict[str, Any]] = [
        *({"id": d, "type": "air_station", "site": f"air-{d[-1]}", "name": f"微站{d[-1]}"} for d in STATIONS),
        {"id": "wq-r1", "type": "water_station", "site": "baima-t1", "name": "白马河站", "interval_s": 3600},
        {"id": "wq-r2", "type": "water_station", "site": "dongxi-t1", "name": "东西河站", "interval_s": 3600},
        {"id": "wq-d1", "type": "water_station", "site": "minjiang-t1", "name": "闽江站", "interval_s": 3600},
        {"id": "sp-1", "type": "sorting_point", "site": "cp-t1", "name": "点一", "interval_s": 3600},
        {"id": "sp-2", "type": "sorting_point", "site": "cp-t2", "name": "点二", "interval_s": 3600},
        {"id": "sm-1", "type": "structure_monitor", "site": "bldg-t1", "name": "楼一测点", "interval_s": 3600},
        {"id": "sm-2", "type": "structure_monitor", "site": "bldg-t2", "name": "楼二测点", "interval_s": 3600},
    ]
    return {"sites": sites, "devices": devices}


def _ms(day: int, hour: int, minute: int = 0) -> int:
    return int(datetime(YEAR, MONTH, day, hour, minute, tzinfo=CHINA_TZ).timestamp() * 1000)


def _air_minutes(device: str, day: int, hour: int) -> tuple[int, float | None]:
    """How many minutes of this hour the station reports, and a pm25 override for the hour."""
    missing = {(15, "aq-c"): range(5), (26, "aq-a"): range(5), (26, "aq-b"): range(5), (26, "aq-c"): range(5),
               (20, "aq-a"): range(3), (20, "aq-c"): range(4)}
    if day == 25 or hour in missing.get((day, device), ()):
        return 0, None
    if day == 20 and (device, hour) in (("aq-a", 3), ("aq-c", 4)):
        return 44, 500.0  # 44 minutes: an invalid hour, with a value that would show if it were counted
    if day == 20 and device == "aq-b":
        return 45, None  # exactly 45 minutes: valid
    return 60, None


def air_points(reg: Registry) -> Iterator[Point]:
    """One reading a minute per station per the module's table."""
    for device in reg.by_domain("air"):
        for day in range(1, DAYS + 1):
            for hour in range(24):
                minutes, override = _air_minutes(device.id, day, hour)
                pm25 = HEAVY[device.id] if day == 7 else STATIONS[device.id] + day
                o3 = (250.0 if hour == 14 else 100.0) if day == 10 else 80.0
                values = {"pm25": override or pm25, "pm10": 40.0, "so2": 10.0, "no2": 20.0, "co": 0.5, "o3": o3}
                for minute in range(minutes):
                    yield Point(device.id, "air", device.type, device.street, device.site.id,
                                _ms(day, hour, minute), dict(values))


def water_values(device: str, day: int) -> dict[str, float]:
    """白马河 over its target on NH3-N, TP, CODMn; 东西河 black-odorous days 1-20; 闽江 class II."""
    if device == "wq-r1":
        return {"ph": 7.2, "do": 4.0, "codmn": 12.0, "nh3n": 1.8, "tp": 0.35, "transparency": 30.0, "orp": 100.0}
    if device == "wq-r2":
        if day <= 20:
            return {"ph": 7.0, "do": 1.5, "codmn": 8.0, "nh3n": 10.0, "tp": 0.2, "transparency": 8.0, "orp": -100.0}
        return {"ph": 7.0, "do": 4.0, "codmn": 8.0, "nh3n": 1.0, "tp": 0.2, "transparency": 40.0, "orp": 100.0}
    return {"ph": 7.5, "do": 7.0, "codmn": 3.5, "nh3n": 0.4, "tp": 0.08, "transparency": 100.0, "orp": 200.0}


def city_points(reg: Registry) -> Iterator[Point]:
    """Hourly water samples, sorting counts (点一 9 of 10 correct, 点二 20 of 20) and building monitors.

    楼一 (concrete, 6 storeys): tilt 0.9° on x (tan 0.9° = 0.01571, 79 % of 0.02: yellow), crack 0.45 mm
    (90 % of 0.5: orange), settlement rising 0.1 mm a day (3 mm/month, 75 % of 4: yellow), vibration 1.0.
    楼二 (masonry, 2 storeys): no tilt, crack 0.45 mm (45 % of 1.0: none), settlement flat, vibration 1.0.
    """
    for device in reg:
        for day in range(1, DAYS + 1):
            for hour in range(24):
                values: dict[str, float | int | bool]
                if device.type == "water_station":
                    values = dict(water_values(device.id, day))
                elif device.type == "sorting_point":
                    counts = (10, 9) if device.id == "sp-1" else (20, 20)
                    values = {"inspected": counts[0], "correct": counts[1]}
                elif device.type == "structure_monitor":
                    first = device.id == "sm-1"
                    elapsed = (day - 1) + hour / 24
                    values = {"tilt_x": 0.9 if first else 0.0, "tilt_y": 0.0, "crack_width": 0.45,
                              "settlement": round(0.1 * elapsed, 6) if first else 0.0, "vibration": 1.0}
                else:
                    continue
                yield Point(device.id, device.domain, device.type, device.street, device.site.id, _ms(day, hour),
                            values, None, {"river": device.site.river} if device.site.river else {})


def write_month(path: Path, reg: Registry) -> Path:
    """Write the month into a new embedded store file."""
    store = EmbeddedStore(path)
    try:
        batch: list[Point] = []
        for point in (*air_points(reg), *city_points(reg)):
            batch.append(point)
            if len(batch) >= 20_000:
                store.write(Batch(points=batch))
                batch = []
        store.write(Batch(points=batch))
    finally:
        store.close()
    return path


MONTH_START = date(YEAR, MONTH, 1)
REPORT_NOW = datetime(2026, 6, 2, 10, 0, tzinfo=CHINA_TZ)
