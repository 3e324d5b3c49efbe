"""The collector's bounded sample of end-to-end ages (store time − observation time)."""

from __future__ import annotations

from gulou.ingest.collector import AgeSample
from gulou.tsdb.records import Point


def _points(ages_ms: list[int], now_ms: int) -> list[Point]:
    return [Point("d", "air", "air_station", "鼓东街道", "s", now_ms - age, {"pm25": 1.0}) for age in ages_ms]


def test_percentiles_of_every_sampled_point() -> None:
    sample = AgeSample(size=1000, every=1)
    assert sample.percentiles() is None
    sample.add_batch(10_000, _points(list(range(1, 101)), 10_000))  # ages 1..100 ms
    assert sample.percentiles() == {"p50": 51, "p99": 100, "samples": 100}


def test_memory_stays_bounded_and_every_nth_point_is_sampled() -> None:
    sample = AgeSample(size=50, every=10)
    for _ in range(100):
        sample.add_batch(5_000, _points([7] * 1000, 5_000))
    assert len(sample.values) == 50
    assert sample.seen == 100 * 100  # one in ten of 100,000 points
    assert sample.percentiles() == {"p50": 7, "p99": 7, "samples": 50}
