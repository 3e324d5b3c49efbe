"""Air statistics per station with polars: valid hourly means, moving means, daily values (GB 3095 §8 / HJ 663).

Hours and days are Beijing wall-clock hours and days; every minimum comes from the standards tables.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date, datetime, timedelta

import polars as pl

from gulou.devices.registry import Device
from gulou.reports.labels import POLLUTANT_NAMES
from gulou.rules.standards import air_limit
from gulou.rules.standards.tables import gb3095

log = logging.getLogger(__name__)

POLLUTANTS: tuple[str, ...] = ("pm25", "pm10", "so2", "no2", "o3", "co")
# Pollutants whose daily value is the 24 h mean; O3 has the daily max 1 h and the daily max 8 h instead.
DAILY_MEAN: tuple[str, ...] = ("pm25", "pm10", "so2", "no2", "co")
# Daily AQI inputs (names of gulou.rules.standards.aqi, daily mode): o3 = daily max 1 h, o3_8h = daily max 8 h.
DAILY_INPUTS: tuple[str, ...] = (*DAILY_MEAN, "o3", "o3_8h")
# The 8 h windows of the daily max end at 07:00-23:00 (hours labelled by their start): 00-07 .. 16-23.
FIRST_WINDOW_END = 7


def minimum(key: str) -> int:
    """A data-validity minimum from gb3095.yaml (hourly_min_minutes, daily_min_hours, ...)."""
    return int(gb3095().validity[key].value)


def hourly_means(frame: pl.DataFrame, devices: Iterable[Device]) -> pl.DataFrame:
    """Per station and Beijing hour: each pollutant's mean when its samples cover >= 45 minutes, else null.

    ``{p}_minutes`` keeps the sampled minutes (samples x the device's reporting interval, at most 60) so a
    report can say why an hour is invalid.
    """
    intervals = {d.id: d.interval_s for d in devices}
    need = minimum("hourly_min_minutes")
    if frame.is_empty():
        return _empty_hourly()
    with_hour = frame.filter(pl.col("device_id").is_in(list(intervals))).with_columns(
        pl.col("local").dt.truncate("1h").alias("hour"),
        pl.col("device_id").replace_strict(intervals, default=60, return_dtype=pl.Float64).alias("interval_s"))
    aggs: list[pl.Expr] = [pl.col("interval_s").first()]
    for p in POLLUTANTS:
        aggs += [pl.col(p).mean().alias(p), pl.col(p).count().alias(f"{p}_n")]
    grouped = with_hour.group_by("device_id", "hour").agg(aggs)
    minutes = [pl.min_horizontal(pl.col(f"{p}_n") * pl.col("interval_s") / 60.0, pl.lit(60.0)).alias(f"{p}_minutes")
               for p in POLLUTANTS]
    grouped = grouped.with_columns(minutes)
    valid = [pl.when(pl.col(f"{p}_minutes") >= need).then(pl.col(p)).otherwise(None).alias(p) for p in POLLUTANTS]
    return grouped.with_columns(valid).select(_hourly_columns()).sort("device_id", "hour")


def _hourly_columns() -> list[str]:
    return ["device_id", "hour", *POLLUTANTS, *(f"{p}_minutes" for p in POLLUTANTS)]


def _empty_hourly() -> pl.DataFrame:
    return pl.DataFrame(schema={"device_id": pl.Utf8, "hour": pl.Datetime("us"),
                                **{p: pl.Float64 for p in POLLUTANTS},
                                **{f"{p}_minutes": pl.Float64 for p in POLLUTANTS}})


def hour_grid(hourly: pl.DataFrame, device_ids: Iterable[str], first: datetime, last: datetime) -> pl.DataFrame:
    """Every station x every hour from ``first`` to ``last`` (naive Beijing, inclusive), with moving means.

    Missing hours are rows of nulls (0 minutes), so moving windows count real clock hours. Adds ``o3_8h``
    (mean of the 8 hours ending at this one, >= 6 valid) and ``so2_24h`` (24 hours, >= 20 valid).
    """
    hours = pl.datetime_range(first, last, interval="1h", time_unit="us", eager=True).alias("hour")
    stations = pl.DataFrame({"device_id": sorted(set(device_ids))}, schema={"device_id": pl.Utf8})
    grid = stations.join(hours.to_frame(), how="cross")
    hourly = hourly.with_columns(pl.col("hour").cast(pl.Datetime("us")))
    grid = grid.join(hourly, on=["device_id", "hour"], how="left").sort("device_id", "hour")
    grid = grid.with_columns([pl.col(f"{p}_minutes").fill_null(0.0) for p in POLLUTANTS])
    return grid.with_columns(
        _moving("o3", 8, minimum("o3_8h_min_hours")).alias("o3_8h"),
        _moving("so2", 24, minimum("daily_min_hours")).alias("so2_24h"),
    )


def _moving(name: str, hours: int, need: int) -> pl.Expr:
    count = pl.col(name).is_not_null().cast(pl.Int32).rolling_sum(hours).over("device_id")
    total = pl.col(name).fill_null(0.0).rolling_sum(hours).over("device_id")
    return pl.when(count >= need).then(total / count).otherwise(None)


def daily_values(grid: pl.DataFrame) -> pl.DataFrame:
    """Per station and day: 24 h means (>= 20 valid hours), O3 daily max 1 h and daily max 8 h with counts.

    The O3 daily max 8 h is the largest of the 17 window means ending 07:00-23:00 (>= 6 hours each), valid
    with >= 14 of them or, with fewer, when it already exceeds the day's GB 3095 8 h limit. The daily max 1 h
    is valid with >= 20 valid hours or, with fewer, when it already exceeds the day's 1 h limit.
    """
    need_hours = minimum("daily_min_hours")
    need_windows = minimum("o3_daily_max_8h_min_values")
    with_day = grid.with_columns(pl.col("hour").dt.date().alias("day"))
    in_day_window = pl.col("hour").dt.hour() >= FIRST_WINDOW_END
    aggs: list[pl.Expr] = []
    for p in DAILY_MEAN:
        aggs += [pl.col(p).count().alias(f"{p}_hours"), pl.col(p).mean().alias(f"{p}_all")]
    aggs += [pl.col("o3").count().alias("o3_hours"), pl.col("o3").max().alias("o3_all"),
             pl.col("o3_8h").filter(in_day_window).count().alias("o3_8h_values"),
             pl.col("o3_8h").filter(in_day_window).max().alias("o3_8h_all")]
    daily = with_day.group_by("device_id", "day").agg(aggs)
    limits = _o3_limits(daily["day"].unique().to_list())
    daily = daily.join(limits, on="day", how="left")
    daily = daily.with_columns(
        [pl.when(pl.col(f"{p}_hours") >= need_hours).then(pl.col(f"{p}_all")).alias(p) for p in DAILY_MEAN]
        + [pl.when((pl.col("o3_hours") >= need_hours) | (pl.col("o3_all") > pl.col("o3_1h_limit")))
           .then(pl.col("o3_all")).alias("o3"),
           pl.when((pl.col("o3_8h_values") >= need_windows) | (pl.col("o3_8h_all") > pl.col("o3_8h_limit")))
           .then(pl.col("o3_8h_all")).alias("o3_8h")])
    counts = [f"{p}_hours" for p in (*DAILY_MEAN, "o3")] + ["o3_8h_values"]
    return daily.select("device_id", "day", *DAILY_INPUTS, *counts).sort("device_id", "day")


def _o3_limits(days: list[date]) -> pl.DataFrame:
    rows = [{"day": d, "o3_1h_limit": air_limit("o3", "1h", d).value, "o3_8h_limit": air_limit("o3", "8h", d).value}
            for d in days]
    return pl.DataFrame(rows, schema={"day": pl.Date, "o3_1h_limit": pl.Float64, "o3_8h_limit": pl.Float64})


def station_days(frames: Iterable[pl.DataFrame], devices: list[Device], first_day: date,
                 last_day: date) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Hour grid and daily values of the stations for whole days ``first_day``..``last_day`` (Beijing).

    ``frames`` are reading slices (``StoreSource.iter_readings``); each is reduced to hourly means at once,
    so a year of minute data never sits in memory.
    """
    hourly = pl.concat([hourly_means(f, devices) for f in frames] or [_empty_hourly()])
    first = datetime.combine(first_day, datetime.min.time())
    last = datetime.combine(last_day, datetime.min.time()) + timedelta(hours=23)
    grid = hour_grid(hourly, [d.id for d in devices], first, last)
    log.debug("air: %s station hours, %s stations", grid.height, len(devices))
    return grid, daily_values(grid)


def invalid_reasons(row: dict[str, object]) -> list[str]:
    """Why a station day has no complete daily AQI, in Chinese: the missing daily values with their counts."""
    need_hours = minimum("daily_min_hours")
    short: dict[int, list[str]] = {}
    for p in (*DAILY_MEAN, "o3"):
        if row.get(p) is None:
            count = row.get(f"{p}_hours")
            short.setdefault(int(count) if isinstance(count, int | float) else 0, []).append(POLLUTANT_NAMES[p])
    windows = row.get("o3_8h_values")
    valid_windows = int(windows) if isinstance(windows, int | float) else 0
    if list(short) == [0] and len(short[0]) == len(DAILY_MEAN) + 1 and valid_windows == 0:
        return ["无数据"]
    reasons = [f"{'、'.join(names)} 有效小时 {count}（需 {need_hours}）" for count, names in short.items()]
    if row.get("o3_8h") is None:
        reasons.append(f"O₃(8h) 有效8小时值 {valid_windows}（需 {minimum('o3_daily_max_8h_min_values')}）")
    return reasons
