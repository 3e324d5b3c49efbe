"""Pure engine tests: every rule kind, hysteresis, held-for, absence, ratio, out-of-order data, restart."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gulou.devices.contract import Reading, StatusUpdate
from gulou.devices.registry import Device, Registry
from gulou.rules.alerts import AlertTransition
from gulou.rules.engine import Engine, period_start
from gulou.rules.model import AnyRule, parse_rules

T0 = datetime(2026, 5, 1, 2, 0, tzinfo=UTC)  # 10:00 Beijing time


def rule(body: str, **common: Any) -> AnyRule:
    """One rule from YAML body lines (id, severity, messages and source filled in)."""
    head = {"id": "t-rule", "severity": "high", "message": "{site_name} {value}", "message_en": "{value}",
            "source": "test [U]"} | common
    lines = "\n".join(f"  {k}: {json.dumps(v, ensure_ascii=False)}" for k, v in head.items())
    indented = "\n".join("  " + line for line in body.strip().splitlines())
    return parse_rules(f"rules:\n- {lines.strip()}\n{indented}\n", "test.yaml")[0]


def reading(device: Device, ts: datetime, **values: float | int | bool) -> Reading:
    """A decoded reading."""
    return Reading(device=device, ts=ts, seq=None, values=values)


def at(minutes: float) -> datetime:
    """T0 plus minutes."""
    return T0 + timedelta(minutes=minutes)


def events(transitions: list[AlertTransition]) -> list[str]:
    """Just the event names."""
    return [t.event for t in transitions]


@pytest.fixture
def bin_(registry: Registry) -> Device:
    """A smart bin."""
    d = registry.get("bin-001-rec")
    assert d is not None
    return d


def test_threshold_fires_once_and_resolves_with_hysteresis(registry: Registry, bin_: Device) -> None:
    r = rule("kind: threshold\ndomain: waste\ndevice_type: smart_bin\nmetric: fill_level\nop: '>='\nlimit: 0.8\n"
             "clear: {op: '<', limit: 0.5}")
    engine = Engine([r], registry)
    assert engine.process(reading(bin_, at(0), fill_level=0.5)) == []
    fired = engine.process(reading(bin_, at(5), fill_level=0.85))
    assert events(fired) == ["firing"]
    a = fired[0].alert
    assert (a.rule_id, a.device_id, a.site, a.street, a.domain, a.severity) == (
        "t-rule", "bin-001-rec", "cp-gd-001", bin_.street, "waste", "high")
    assert a.value == 0.85 and a.limit == 0.8 and a.exceedance == pytest.approx(0.0625)
    assert a.message.startswith(bin_.site.name)
    # Still above, and between the clear and fire limits: no new alert, last_seen moves on (dedup).
    assert engine.process(reading(bin_, at(10), fill_level=0.9)) == []
    assert engine.process(reading(bin_, at(15), fill_level=0.6)) == []
    assert engine.book.active["t-rule|bin-001-rec"].last_seen == at(15)
    resolved = engine.process(reading(bin_, at(20), fill_level=0.3))
    assert events(resolved) == ["resolved"]
    assert resolved[0].alert.first_seen == at(5) and resolved[0].alert.last_seen == at(20)
    assert not engine.book.active


def test_threshold_without_clear_uses_negation(registry: Registry, bin_: Device) -> None:
    r = rule("kind: threshold\ndomain: waste\nmetric: temperature\nop: '>='\nlimit: 60")
    engine = Engine([r], registry)
    assert events(engine.process(reading(bin_, at(0), temperature=61.0))) == ["firing"]
    assert events(engine.process(reading(bin_, at(5), temperature=59.9))) == ["resolved"]


def test_lower_bound_exceedance(registry: Registry) -> None:
    station = registry.get("wq-baima-01")
    assert station is not None
    r = rule("kind: threshold\ndomain: water\nmetric: do\nop: '<'\nlimit: 2")
    fired = Engine([r], registry).process(reading(station, at(0), do=1.5))
    assert fired[0].alert.exceedance == pytest.approx(0.25)  # (2 − 1.5) / 2


def test_held_for_count_and_duration(registry: Registry, bin_: Device) -> None:
    r = rule("kind: held\ndomain: waste\nmetric: nh3\nop: '>'\nlimit: 1.5\nfor_count: 3\nfor_s: 600")
    engine = Engine([r], registry)
    assert engine.process(reading(bin_, at(0), nh3=2.0)) == []
    assert engine.process(reading(bin_, at(5), nh3=2.0)) == []
    assert engine.process(reading(bin_, at(6), nh3=0.2)) == []  # breaks the run
    assert engine.process(reading(bin_, at(7), nh3=2.0)) == []
    assert engine.process(reading(bin_, at(8), nh3=2.0)) == []
    assert engine.process(reading(bin_, at(9), nh3=2.0)) == []  # 3 readings but only 2 min held
    assert events(engine.process(reading(bin_, at(17), nh3=2.0))) == ["firing"]
    assert events(engine.process(reading(bin_, at(18), nh3=1.0))) == ["resolved"]


def test_window_mean_with_min_count_and_dated_limit(registry: Registry) -> None:
    station = registry.get("aq-001")
    assert station is not None
    r = rule("kind: window\ndomain: air\nmetric: pm25\nagg: mean\nwindow_s: 3600\nmin_count: 3\nop: '>'\n"
             "limit: {by_date: [{value: 75}, {since: '2026-03-01', value: 60}]}")
    engine = Engine([r], registry)
    assert engine.process(reading(station, at(0), pm25=70.0)) == []
    assert engine.process(reading(station, at(1), pm25=70.0)) == []  # 2 < min_count: undecided
    fired = engine.process(reading(station, at(2), pm25=70.0))
    assert events(fired) == ["firing"] and fired[0].alert.limit == 60  # 2026 standard applies in May 2026
    old = Engine([r], registry)
    day = datetime(2026, 2, 1, tzinfo=UTC)
    for i in range(3):
        assert old.process(reading(station, day + timedelta(minutes=i), pm25=70.0)) == []  # 75 in Feb 2026


def test_window_bucketed_hourly_means_need_valid_hours(registry: Registry) -> None:
    station = registry.get("aq-001")
    assert station is not None
    r = rule("kind: window\ndomain: air\nmetric: o3\nagg: mean\nwindow_s: 28800\nbucket_s: 3600\n"
             "bucket_min_fraction: 0.75\nmin_count: 6\nop: '>'\nlimit: 160")
    engine = Engine([r], registry)
    out: list[AlertTransition] = []
    for hour in range(6):
        # Hour 0 has only 30 one-minute readings (< 45 min): not a valid hourly value.
        n = 30 if hour == 0 else 50
        for minute in range(n):
            out += engine.process(reading(station, at(hour * 60 + minute), o3=200.0))
    assert out == []  # 5 valid hours only
    for minute in range(45):
        out += engine.process(reading(station, at(6 * 60 + minute), o3=200.0))
    assert events(out) == ["firing"]
    assert out[0].alert.value == pytest.approx(200.0)


def test_window_percentile_and_max(registry: Registry, bin_: Device) -> None:
    r = rule("kind: window\ndomain: waste\nmetric: h2s\nagg: percentile\npercentile: 50\nwindow_s: 600\n"
             "op: '>'\nlimit: 0.06", id="p50")
    m = rule("kind: window\ndomain: waste\nmetric: h2s\nagg: max\nwindow_s: 600\nop: '>'\nlimit: 0.06", id="mx")
    engine = Engine([r, m], registry)
    out = engine.process(reading(bin_, at(0), h2s=0.01))
    out += engine.process(reading(bin_, at(1), h2s=0.1))
    assert [t.alert.rule_id for t in out] == ["mx"]
    out = engine.process(reading(bin_, at(2), h2s=0.1))
    assert [t.alert.rule_id for t in out] == ["p50"]
    # 11 minutes later the window holds only the newest reading.
    out = engine.process(reading(bin_, at(13), h2s=0.01))
    assert sorted(t.event for t in out) == ["resolved", "resolved"]


def test_rate_rise_in_five_minutes(registry: Registry, bin_: Device) -> None:
    r = rule("kind: rate\ndomain: waste\nmetric: temperature\nper_s: 300\nwindow_s: 300\nop: '>='\nlimit: 10\n"
             "clear: {op: '<', limit: 2}")
    engine = Engine([r], registry)
    assert engine.process(reading(bin_, at(0), temperature=25.0)) == []
    assert engine.process(reading(bin_, at(5), temperature=31.0)) == []  # +6 in 5 min
    fired = engine.process(reading(bin_, at(10), temperature=42.0))  # +11 in 5 min
    assert events(fired) == ["firing"] and fired[0].alert.value == pytest.approx(11.0)
    assert engine.process(reading(bin_, at(15), temperature=47.0)) == []  # +5: between clear and fire
    assert events(engine.process(reading(bin_, at(20), temperature=47.5))) == ["resolved"]


def test_rate_per_day_absolute(registry: Registry) -> None:
    st = registry.get("st-001-ne")
    assert st is not None
    r = rule("kind: rate\ndomain: structure\nmetric: settlement\nper_s: 86400\nwindow_s: 86400\nmin_span_s: 3600\n"
             "absolute: true\nop: '>'\nlimit: 2")
    engine = Engine([r], registry)
    assert engine.process(reading(st, at(0), settlement=-1.0)) == []
    assert engine.process(reading(st, at(30), settlement=-1.2)) == []  # span < 1 h: undecided
    fired = engine.process(reading(st, at(360), settlement=-2.0))  # −1 mm in 6 h = 4 mm/day
    assert events(fired) == ["firing"] and fired[0].alert.value == pytest.approx(4.0)


def test_absence_by_clock_and_status(registry: Registry, bin_: Device) -> None:
    r = rule("kind: absence\ndomain: waste\nk: 3")
    engine = Engine([r], registry)
    assert engine.process(reading(bin_, at(0), fill_level=0.1)) == []
    assert engine.tick(at(15)) == []  # 3 × 300 s not yet exceeded
    fired = engine.tick(at(15.5))
    assert events(fired) == ["firing"] and fired[0].alert.limit == 900
    assert engine.tick(at(20)) == []  # still offline: deduplicated
    assert events(engine.process(reading(bin_, at(21), fill_level=0.1))) == ["resolved"]
    offline = engine.process(StatusUpdate(device=bin_, ts=at(22), online=False, battery=None, rssi=None))
    assert events(offline) == ["firing"]
    assert engine.process(StatusUpdate(device=bin_, ts=at(23), online=True, battery=None, rssi=None)) == []
    assert events(engine.process(reading(bin_, at(24), fill_level=0.1))) == ["resolved"]


def test_ratio_per_site_per_day(registry: Registry) -> None:
    point = registry.get("sort-001")
    assert point is not None
    r = rule("kind: ratio\ndomain: waste\ndevice_type: sorting_point\nnumerator: correct\ndenominator: inspected\n"
             "period: day\ngroup_by: site\nmin_denominator: 20\nop: '<'\nlimit: 0.95")
    engine = Engine([r], registry, lateness_s=600)
    day = datetime(2026, 5, 1, 0, 0, tzinfo=UTC) - timedelta(hours=8)  # Beijing midnight
    assert period_start(int((day + timedelta(hours=5)).timestamp() * 1000), "day") == int(day.timestamp() * 1000)
    out = []
    for h in range(8, 20):
        out += engine.process(reading(point, day + timedelta(hours=h), inspected=10, correct=9))
    assert out == []  # the day is judged once it is over
    out = engine.process(reading(point, day + timedelta(days=1, minutes=15), inspected=10, correct=10))
    assert events(out) == ["firing"]
    a = out[0].alert
    assert a.value == pytest.approx(0.9) and a.site == "cp-gd-001" and a.key == "t-rule|site:cp-gd-001"
    assert a.exceedance == pytest.approx((0.95 - 0.9) / 0.95)
    # A good next day resolves it, judged by the clock (tick) as no reading of day 3 arrives.
    for h in range(1, 12):
        engine.process(reading(point, day + timedelta(days=1, hours=h), inspected=10, correct=10))
    assert events(engine.tick(day + timedelta(days=2, minutes=11))) == ["resolved"]
    # A reading for an already-judged day is late and ignored.
    late = engine.stats.late_ignored
    engine.process(reading(point, day + timedelta(hours=12), inspected=10, correct=0))
    assert engine.stats.late_ignored == late + 1


def test_out_of_order_within_bound_counts_in_window(registry: Registry, bin_: Device) -> None:
    r = rule("kind: window\ndomain: waste\nmetric: nh3\nagg: mean\nwindow_s: 3600\nmin_count: 3\nop: '>'\n"
             "limit: 1.5")
    engine = Engine([r], registry, lateness_s=600)
    engine.process(reading(bin_, at(20), nh3=2.0))
    engine.process(reading(bin_, at(30), nh3=2.0))
    fired = engine.process(reading(bin_, at(25), nh3=2.0))  # 5 min late: within the 10 min bound
    assert events(fired) == ["firing"]
    assert engine.stats.out_of_order == 1 and engine.stats.late_ignored == 0


def test_out_of_order_beyond_bound_is_counted_and_ignored(registry: Registry, bin_: Device) -> None:
    r = rule("kind: window\ndomain: waste\nmetric: nh3\nagg: mean\nwindow_s: 7200\nmin_count: 3\nop: '>'\n"
             "limit: 1.5")
    engine = Engine([r], registry, lateness_s=600)
    engine.process(reading(bin_, at(60), nh3=2.0))
    engine.process(reading(bin_, at(70), nh3=2.0))
    assert engine.process(reading(bin_, at(30), nh3=2.0)) == []  # 40 min late: ignored for windows
    assert engine.stats.late_ignored == 1
    assert engine.snapshot()["state"]["t-rule|bin-001-rec"]["ts"] == [
        int(at(60).timestamp() * 1000), int(at(70).timestamp() * 1000)]


def test_stale_reading_does_not_resolve_threshold(registry: Registry, bin_: Device) -> None:
    r = rule("kind: threshold\ndomain: waste\nmetric: temperature\nop: '>='\nlimit: 60")
    engine = Engine([r], registry)
    assert events(engine.process(reading(bin_, at(10), temperature=70.0))) == ["firing"]
    assert engine.process(reading(bin_, at(5), temperature=20.0)) == []  # older than what we know
    assert "t-rule|bin-001-rec" in engine.book.active


def test_state_survives_restart_through_snapshot(registry: Registry, bin_: Device) -> None:
    window = rule("kind: window\ndomain: waste\nmetric: nh3\nagg: mean\nwindow_s: 3600\nmin_count: 4\nop: '>'\n"
                  "limit: 1.5", id="win")
    absence = rule("kind: absence\ndomain: waste\nk: 3", id="gone")
    thresh = rule("kind: threshold\ndomain: waste\nmetric: temperature\nop: '>='\nlimit: 60", id="hot")
    first = Engine([window, absence, thresh], registry)
    for i in range(3):
        first.process(reading(bin_, at(i), nh3=2.0, temperature=70.0 if i == 2 else 20.0))
    snap = json.loads(json.dumps(first.snapshot()))  # what the alert store keeps
    second = Engine([window, absence, thresh], registry)
    second.restore(snap)
    # The window continues (4th value fires), the hot alert is not fired twice, absence still tracked.
    out = second.process(reading(bin_, at(3), nh3=2.0, temperature=75.0))
    assert [(t.event, t.alert.rule_id) for t in out] == [("firing", "win")]
    assert events(second.tick(at(30))) == ["firing"]
    assert events(second.process(reading(bin_, at(31), nh3=0.1, temperature=20.0))) == ["resolved", "resolved"]
