"""Recomputation over stored history with polars: valid hourly and daily means, daily AQI, good-day ratio."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any

import polars as pl

from gulou.devices.registry import Registry
from gulou.rules.standards.aqi import MEASURED
from gulou.rules.standards.tables import gb3095
from gulou.timeutil import CHINA_TZ, CHINA_TZ_NAME

POLLUTANTS: tuple[str, ...] = MEASURED
ReadingsQuery = Callable[..., list[dict[str, Any]]]


def daily_mean_pollutants() -> tuple[str, ...]:
    """Pollutants whose daily value is a 24 h mean: those GB 3095 gives a 24 h limit (O3 uses its 8 h maximum)."""
    table = gb3095().limits(gb3095().rule_sets[0].limits)
    return tuple(p for p in POLLUTANTS if "24h" in table.get(p, {}))


def hour_min_coverage_s() -> float:
    """Sampling a valid 1 h value needs, in seconds (GB 3095 §8, from the standards table)."""
    return gb3095().validity["hourly_min_minutes"].value * 60


def day_min_hours() -> int:
    """Valid hourly values a 24 h mean needs (GB 3095 §8, from the standards table)."""
    return int(gb3095().validity["daily_min_hours"].value)


def good_day_max_aqi() -> float:
    """The highest daily AQI of a good day (优良天)."""
    return gb3095().validity["good_day_max_aqi"].value


def hourly_means(rows: list[dict[str, Any]], registry: Registry) -> pl.DataFrame:
    """Valid hourly means per station (Beijing-time hours); invalid hours hold nulls."""
    present = [p for p in POLLUTANTS if any(p in r for r in rows)]
    if not rows or not present:
        return pl.DataFrame(schema={"device_id": pl.Utf8, "hour": pl.Datetime("us"), **{
            p: pl.Float64 for p in POLLUTANTS}})
    intervals = {d.id: d.interval_s for d in registry}
    frame = pl.DataFrame(
        [{"device_id": r["device_id"], "ts": r["ts"], **{p: r.get(p) for p in present}} for r in rows],
        schema={"device_id": pl.Utf8, "ts": pl.Utf8, **{p: pl.Float64 for p in present}},
    )
    frame = frame.with_columns(
        pl.col("ts").str.to_datetime(time_zone="UTC").dt.convert_time_zone(CHINA_TZ_NAME)
        .dt.replace_time_zone(None).dt.truncate("1h").alias("hour"),
        pl.col("device_id").replace_strict(intervals, default=60, return_dtype=pl.Int64).alias("interval_s"),
    )
    aggs: list[pl.Expr] = [pl.col("interval_s").first()]
    for p in present:
        aggs += [pl.col(p).mean().alias(p), pl.col(p).count().alias(f"{p}_n")]
    hourly = frame.group_by("device_id", "hour").agg(aggs)
    coverage = hour_min_coverage_s()
    hourly = hourly.with_columns([
        pl.when(pl.col(f"{p}_n") * pl.col("interval_s") >= coverage).then(pl.col(p)).otherwise(None)
        .alias(p) for p in present
    ]).with_columns([pl.lit(None, dtype=pl.Float64).alias(p) for p in POLLUTANTS if p not in present])
    return hourly.select("device_id", "hour", *POLLUTANTS).sort("device_id", "hour")


def daily_values(hourly: pl.DataFrame) -> pl.DataFrame:
    """24 h means from enough valid hours (GB 3095 §8), the O3 daily max 8 h and max 1 h, per station and day.

    The O3 daily max 1 h (``o3``) is part of the daily AQI: valid with ``daily_min_hours`` valid hours, or with
    fewer when it already exceeds the day's 1 h limit (the reports' rule, docs/reports.md).
    """
    with_day = hourly.with_columns(pl.col("hour").dt.date().alias("day"))
    need = day_min_hours()
    means = with_day.group_by("device_id", "day").agg(
        [pl.when(pl.col(p).count() >= need).then(pl.col(p).mean()).otherwise(None).alias(p)
         for p in daily_mean_pollutants()]
    )
    o3_rows = []
    for (device_id, day), group in with_day.group_by("device_id", "day"):
        by_hour = {h.hour: v for h, v in zip(group["hour"], group["o3"], strict=True) if v is not None}
        o3_rows.append({"device_id": device_id, "day": day, "o3_8h": o3_daily_max_8h(by_hour, day),
                        "o3": o3_daily_max_1h(by_hour, day)})
    o3 = pl.DataFrame(o3_rows, schema={"device_id": pl.Utf8, "day": pl.Date, "o3_8h": pl.Float64,
                                       "o3": pl.Float64})
    return means.join(o3, on=["device_id", "day"], how="left").sort("device_id", "day")


def o3_daily_max_8h(by_hour: dict[int, float], day: date) -> float | None:
    """Daily max of the 8 h moving means ending 08:00–24:00, valid per the standards module's rules."""
    from gulou.rules.standards import o3_daily_max_8h as daily_max

    series = [(datetime.combine(day, time(hour)), value) for hour, value in sorted(by_hour.items())]
    return daily_max(series).value


def o3_daily_max_1h(by_hour: dict[int, float], day: date) -> float | None:
    """The day's largest valid O3 hourly value, when there are enough hours or it is over the 1 h limit."""
    from gulou.rules.standards import air_limit

    if not by_hour:
        return None
    peak = max(by_hour.values())
    return peak if len(by_hour) >= day_min_hours() or peak > air_limit("o3", "1h", day).value else None


def _district_days(daily: pl.DataFrame, registry: Registry) -> list[dict[str, Any]]:
    """Per day, each pollutant's mean over the evaluation stations' valid daily values, and its daily AQI."""
    from gulou.rules.standards import aqi

    air = registry.by_domain("air")
    evaluation = {d.id for d in air if d.evaluation_station} or {d.id for d in air}
    names = (*daily_mean_pollutants(), "o3", "o3_8h")
    days = daily.filter(pl.col("device_id").is_in(list(evaluation))).group_by("day").agg(
        [pl.col(n).mean() for n in names]).sort("day")
    out = []
    for row in days.iter_rows(named=True):
        values = {n: row[n] for n in names if row[n] is not None}
        day: dict[str, Any] = {"date": row["day"].isoformat(), "valid": len(values) == len(names)}
        if day["valid"]:
            result = aqi(values, row["day"], "daily")
            day.update({"aqi": result.aqi, "category": result.category,
                        "primary_pollutants": list(result.primary_pollutants)})
        out.append(day)
    return out


def recompute_air(query: ReadingsQuery, registry: Registry, since: datetime, until: datetime) -> dict[str, Any]:
    """Daily values and AQI per air station, the district days and the good-day ratio per district day.

    ``good_day_ratio`` counts district days (the plan's 优良天数比例); ``good_station_day_ratio`` pools the
    station-days, for comparison only. The reports (``gulou report``) give the official figures.
    """
    from gulou.rules.standards import aqi, good_day_ratio

    rows = query(domain="air", since_ms=int(since.timestamp() * 1000), until_ms=int(until.timestamp() * 1000))
    daily = daily_values(hourly_means(rows, registry))
    daily_means = daily_mean_pollutants()
    good_max = good_day_max_aqi()
    stations: dict[str, dict[str, Any]] = {}
    for row in daily.iter_rows(named=True):
        device = registry.get(row["device_id"])
        station = stations.setdefault(row["device_id"], {
            "device_id": row["device_id"], "site": device.site.id if device else None,
            "site_name": device.site.name if device else None, "days": [], "valid_days": 0, "good_days": 0})
        values = {p: row[p] for p in daily_means if row[p] is not None}
        values.update({n: row[n] for n in ("o3", "o3_8h") if row[n] is not None})
        # A day counts when every pollutant has a valid daily value (the AQI must be complete), O3 1 h included.
        valid = len(values) == len(daily_means) + 2
        day: dict[str, Any] = {"date": row["day"].isoformat(), "valid": valid,
                               **{k: None if v is None else round(v, 3) for k, v in values.items()}}
        if valid:
            result = aqi(values, row["day"], "daily")
            day.update({"aqi": result.aqi, "category": result.category,
                        "primary_pollutants": list(result.primary_pollutants), "standard": result.standard})
            station["valid_days"] += 1
            station["good_days"] += int(result.aqi <= good_max)
        station["days"].append(day)
    for s in stations.values():
        ratio = good_day_ratio([(date.fromisoformat(d["date"]), d.get("aqi")) for d in s["days"]]).value
        s["good_day_ratio"] = None if ratio is None else round(ratio, 4)
    valid_days = sum(s["valid_days"] for s in stations.values())
    good_days = sum(s["good_days"] for s in stations.values())
    district = _district_days(daily, registry)
    ratio = good_day_ratio([(date.fromisoformat(d["date"]), d.get("aqi")) for d in district]).value
    return {"since": since.isoformat(), "until": until.isoformat(), "stations": list(stations.values()),
            "district_days": district, "good_day_ratio": None if ratio is None else round(ratio, 4),
            "valid_station_days": valid_days, "good_station_days": good_days,
            "good_station_day_ratio": round(good_days / valid_days, 4) if valid_days else None}


def parse_day_or_time(text: str) -> datetime:
    """``YYYY-MM-DD`` (Beijing midnight) or an ISO timestamp with offset."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not YYYY-MM-DD nor an ISO timestamp") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=CHINA_TZ)
    return parsed


def default_until(since: datetime) -> datetime:
    """End of today (Beijing time), never before ``since``."""
    tomorrow = datetime.now(CHINA_TZ).date() + timedelta(days=1)
    return max(datetime.combine(tomorrow, datetime.min.time(), CHINA_TZ), since)

