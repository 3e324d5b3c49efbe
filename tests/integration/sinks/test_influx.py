"""InfluxSink against a real VictoriaMetrics through /api/v2/write, including an outage and replay."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gulou.ingest.spool import DurableWriter, Spool
from gulou.settings import Settings
from gulou.sinks.influx import InfluxSink
from gulou.tsdb.line_protocol import encode_line
from gulou.tsdb.records import Batch, Point, StatusEvent
from gulou.tsdb.writer import SinkError
from tests.servers import free_port
from tests.tsdb import VictoriaMetrics

pytestmark = pytest.mark.integration

# An hour ago, whole seconds: inside VictoriaMetrics' retention and not in the future.
T0 = (int(time.time()) - 3600) * 1000
STREET = "鼓东街道"


def water(device: str, ts_ms: int, ph: float) -> Point:
    return Point(device, "water", "water_station", STREET, "baima river-01", ts_ms, {"ph": ph, "do": 6.25}, None,
                 {"river": "白马河"})


def lot(device: str, ts_ms: int, occupied: int) -> Point:
    return Point(device, "parking", "parking_lot", STREET, "lot,1", ts_ms, {"total_spots": 100,
                 "occupied_spots": occupied}, None, {"lot_type": "commercial"})


@pytest.fixture
def sink(victoria_metrics: VictoriaMetrics) -> Iterator[InfluxSink]:
    s = InfluxSink(victoria_metrics.url, "gulou", "gulou", "unused-token", timeout_s=5)
    yield s
    s.close()


def samples(vm: VictoriaMetrics, metric: str) -> dict[str, list[tuple[int, float]]]:
    """device label -> [(timestamp, value)] for one metric."""
    out: dict[str, list[tuple[int, float]]] = {}
    for series in vm.export(f'{{__name__="{metric}"}}'):
        out.setdefault(series["metric"]["device"], []).extend(zip(series["timestamps"], series["values"], strict=True))
    return {k: sorted(v) for k, v in out.items()}


def test_points_arrive_with_tags_values_and_timestamps(victoria_metrics: VictoriaMetrics, sink: InfluxSink) -> None:
    points = [water(f"WQ-{d}", T0 + i * 1000, 7.0 + i / 10) for d in range(3) for i in range(20)]
    points += [lot("PK-1", T0 + i * 60_000, 40 + i) for i in range(5)]
    statuses = [StatusEvent("WQ-0", "water", STREET, "baima river-01", T0, True, 87.5, -70.0)]
    sink.write(Batch(points=points, statuses=statuses))

    ph = samples(victoria_metrics, "water_ph")
    assert sorted(ph) == ["WQ-0", "WQ-1", "WQ-2"]
    assert ph["WQ-1"] == [(T0 + i * 1000, 7.0 + i / 10) for i in range(20)]
    assert victoria_metrics.count_samples("water_do") == 60
    [series] = victoria_metrics.export('water_ph{device="WQ-2"}')
    labels = {k: v for k, v in series["metric"].items() if k != "db"}
    assert labels == {"__name__": "water_ph", "device": "WQ-2", "type": "water_station", "street": STREET,
                      "site": "baima river-01", "river": "白马河"}
    occupied_samples = [(T0 + i * 60_000, 40 + i) for i in range(5)]
    assert samples(victoria_metrics, "parking_occupied_spots") == {"PK-1": occupied_samples}
    [occupied] = victoria_metrics.export("parking_occupied_spots")
    assert occupied["metric"]["site"] == "lot,1" and occupied["metric"]["lot_type"] == "commercial"
    assert samples(victoria_metrics, "device_status_online") == {"WQ-0": [(T0, 1)]}
    assert samples(victoria_metrics, "device_status_battery") == {"WQ-0": [(T0, 87.5)]}


def test_duplicates_do_not_create_extra_samples(victoria_metrics: VictoriaMetrics, sink: InfluxSink) -> None:
    points = [water("WQ-9", T0 + i * 1000, 7.5) for i in range(10)]
    sink.write(Batch(points=points))
    sink.write(Batch(points=points))  # a re-delivery after a reconnect
    sink.write(Batch(points=points[:5]))
    assert victoria_metrics.count_samples("water_ph") == 10


def test_write_lines_for_other_measurements(victoria_metrics: VictoriaMetrics, sink: InfluxSink) -> None:
    sink.write_lines([
        encode_line("alerts", {"rule_id": "pm25-hourly", "state": "firing", "street": STREET, "device": "AQ-1"},
                    {"value": 150.0, "limit": 75.0, "exceedance": 1.0, "message": "PM2.5 超标"}, T0),
        encode_line("completeness", {"device": "AQ-1", "domain": "air", "street": STREET},
                    {"expected": 60, "received": 58, "stored": 57, "rejected": 1, "ratio": 0.95}, T0),
    ])
    assert samples(victoria_metrics, "alerts_exceedance") == {"AQ-1": [(T0, 1.0)]}
    assert samples(victoria_metrics, "completeness_ratio") == {"AQ-1": [(T0, 0.95)]}


def test_unreachable_server_raises_sink_error() -> None:
    dead = InfluxSink(f"http://127.0.0.1:{free_port()}", "gulou", "gulou", None, timeout_s=2)
    try:
        with pytest.raises(SinkError, match="unreachable"):
            dead.write(Batch(points=[water("WQ-1", T0, 7.0)]))
    finally:
        dead.close()


def test_outage_spools_then_replay_drains_in_order(victoria_metrics: VictoriaMetrics, sink: InfluxSink,
                                                   tmp_path: Path) -> None:
    writer = DurableWriter(sink, Spool(tmp_path / "spool", 1 << 20), retry_initial_s=0)

    def batch(n: int) -> Batch:
        return Batch(points=[water(f"WQ-{d}", T0 + n * 1000, float(n % 14)) for d in range(10)])

    assert writer.write(batch(0)) == "stored"
    victoria_metrics.stop()
    with pytest.raises(SinkError):
        sink.write(batch(99))
    outcomes = [writer.write(batch(n)) for n in range(1, 8)]
    assert outcomes == ["spooled"] * 7 and writer.pending == 7
    assert writer.replay() == 0 and writer.pending == 7  # still down: nothing lost, nothing moved

    victoria_metrics.start()
    assert writer.write(batch(8)) == "spooled"  # behind the backlog, not ahead of it
    assert writer.replay(max_batches=3) == 3 and writer.pending == 5
    assert writer.replay() == 5 and writer.pending == 0
    assert writer.last_outage is not None
    assert not list((tmp_path / "spool").glob("*.spool"))

    ph = samples(victoria_metrics, "water_ph")
    assert sorted(ph) == [f"WQ-{d}" for d in range(10)]
    assert all(v == [(T0 + n * 1000, float(n % 14)) for n in range(9)] for v in ph.values())
    assert victoria_metrics.count_samples("water_ph") == 90
    assert victoria_metrics.count_samples("water_do") == 90


def test_from_settings_reads_token_file(victoria_metrics: VictoriaMetrics, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("secret-token\n")
    settings = Settings(influx_url=victoria_metrics.url, influx_org="gulou", influx_bucket="gulou",
                        influx_token_file=token)
    s = InfluxSink.from_settings(settings)
    assert s is not None
    try:
        s.write(Batch(points=[water("WQ-5", T0, 6.5)]))
        assert s._client.token == "secret-token"
    finally:
        s.close()
    assert samples(victoria_metrics, "water_ph") == {"WQ-5": [(T0, 6.5)]}
    # Not configured: no sink (the embedded store keeps the readings); half configured: a clear error.
    assert InfluxSink.from_settings(Settings(influx_url=None)) is None
    with pytest.raises(ValueError, match="GULOU_INFLUX_URL is set but GULOU_INFLUX_BUCKET is not"):
        InfluxSink.from_settings(Settings(influx_url=victoria_metrics.url, influx_org="gulou", influx_bucket=None))
