"""Alert lifecycle, de-duplication, re-notify, exceedance multiple, message rendering and the alert store."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from gulou.devices.registry import Registry
from gulou.rules.alert_store import AlertStore
from gulou.rules.alerts import AlertBook, Signal, exceedance, render
from gulou.rules.engine import Engine
from tests.unit.rules.test_rules_engine import at, events, reading, rule


def test_exceedance_multiple_upper_and_lower() -> None:
    assert exceedance(150.0, 75.0, ">") == pytest.approx(1.0)
    assert exceedance(1.0, 2.0, "<") == pytest.approx(0.5)
    assert exceedance(1.0, 2.0, "<=") == pytest.approx(0.5)
    assert exceedance(1.0, 0.0, ">") is None
    assert exceedance(None, 2.0, ">") is None


def test_render_fills_and_survives_missing_values() -> None:
    text = render("{site_name}：{value:.1f}，超标{exceedance:.2f}倍", {"site_name": "西湖", "value": 90.04,
                                                                    "exceedance": 0.2})
    assert text == "西湖：90.0，超标0.20倍"
    assert render("{site_name} {value:.1f}", {"site_name": "西湖", "value": None}) == "西湖 -"


def test_one_alert_per_rule_and_device_and_history_ids(registry: Registry) -> None:
    r = rule("kind: threshold\ndomain: waste\nmetric: temperature\nop: '>='\nlimit: 60")
    engine = Engine([r], registry)
    a, b = registry.get("bin-001-rec"), registry.get("bin-001-haz")
    assert a is not None and b is not None
    out = engine.process(reading(a, at(0), temperature=70.0)) + engine.process(reading(b, at(0), temperature=70.0))
    out += engine.process(reading(a, at(1), temperature=71.0))  # duplicate firing: deduplicated
    assert [(t.event, t.alert.device_id) for t in out] == [("firing", "bin-001-rec"), ("firing", "bin-001-haz")]
    assert len(engine.book.active) == 2
    first_id = out[0].alert.alert_id
    engine.process(reading(a, at(2), temperature=20.0))
    again = engine.process(reading(a, at(3), temperature=80.0))
    assert events(again) == ["firing"] and again[0].alert.alert_id != first_id


def test_renotify_interval_in_event_time(registry: Registry) -> None:
    r = rule("kind: threshold\ndomain: waste\nmetric: temperature\nop: '>='\nlimit: 60\nrenotify_s: 600")
    engine = Engine([r], registry, default_renotify_s=None)
    bin_ = registry.get("bin-001-rec")
    assert bin_ is not None
    assert events(engine.process(reading(bin_, at(0), temperature=70.0))) == ["firing"]
    assert engine.process(reading(bin_, at(5), temperature=70.0)) == []
    renote = engine.process(reading(bin_, at(10), temperature=72.0))
    assert events(renote) == ["renotify"] and renote[0].alert.value == 72.0
    assert renote[0].alert.first_seen == at(0) and renote[0].alert.last_seen == at(10)
    assert engine.process(reading(bin_, at(15), temperature=70.0)) == []
    assert events(engine.process(reading(bin_, at(20), temperature=70.0))) == ["renotify"]


def test_default_renotify_and_none(registry: Registry) -> None:
    r = rule("kind: threshold\ndomain: waste\nmetric: temperature\nop: '>='\nlimit: 60")
    bin_ = registry.get("bin-001-rec")
    assert bin_ is not None
    quiet = Engine([r], registry, default_renotify_s=None)
    quiet.process(reading(bin_, at(0), temperature=70.0))
    assert quiet.process(reading(bin_, at(600), temperature=70.0)) == []
    hourly = Engine([r], registry, default_renotify_s=3600)
    hourly.process(reading(bin_, at(0), temperature=70.0))
    assert events(hourly.process(reading(bin_, at(60), temperature=70.0))) == ["renotify"]


def test_book_ignores_clear_without_alert(registry: Registry) -> None:
    r = rule("kind: threshold\ndomain: waste\nmetric: temperature\nop: '>='\nlimit: 60")
    bin_ = registry.get("bin-001-rec")
    assert bin_ is not None
    book = AlertBook()
    assert book.apply(r, bin_, "k", Signal("clear", at(0), value=1.0, limit=60.0)) is None
    assert book.apply(r, bin_, "k", Signal("hold", at(0))) is None
    assert book.apply(r, bin_, "k", Signal("fire", at(1), value=61.0, limit=60.0)) is not None


def test_alert_carries_every_field(registry: Registry) -> None:
    r = rule("kind: threshold\ndomain: waste\nmetric: temperature\nop: '>='\nlimit: 60",
             message="{site_name}{device_name}温度{value:.1f}", message_en="{device} temp {value:.1f}",
             source="smart-bin practice [M]")
    bin_ = registry.get("bin-001-rec")
    assert bin_ is not None
    data = Engine([r], registry).process(reading(bin_, at(0), temperature=75.0))[0].to_json()
    for key in ("rule_id", "device_id", "site", "street", "lat", "lon", "domain", "severity", "state", "value",
                "limit", "exceedance", "standard", "message", "message_en", "first_seen", "last_seen"):
        assert key in data, key
    assert data["event"] == "firing" and data["state"] == "firing"
    assert data["message"] == f"{bin_.site.name}{bin_.name}温度75.0"
    assert data["message_en"] == "bin-001-rec temp 75.0"
    assert data["standard"] == "smart-bin practice [M]" and data["exceedance"] == pytest.approx(0.25)
    assert (data["lat"], data["lon"]) == (bin_.lat, bin_.lon)


def test_alert_store_records_history_and_state(tmp_path: Path, registry: Registry) -> None:
    r = rule("kind: threshold\ndomain: waste\nmetric: temperature\nop: '>='\nlimit: 60")
    bin_ = registry.get("bin-001-rec")
    assert bin_ is not None
    engine = Engine([r], registry)
    store = AlertStore(tmp_path / "gulou.db")
    fired = engine.process(reading(bin_, at(0), temperature=70.0))[0]
    store.record(fired)
    assert [a["state"] for a in store.alerts(active_only=True)] == ["firing"]
    resolved = engine.process(reading(bin_, at(0) + timedelta(minutes=5), temperature=20.0))[0]
    store.record(resolved)
    assert store.alerts(active_only=True) == []
    rows = store.alerts()
    assert len(rows) == 1 and rows[0]["state"] == "resolved" and rows[0]["rule_id"] == "t-rule"
    assert [e["event"] for e in store.history(fired.alert.alert_id)] == ["firing", "resolved"]
    store.keep("webhook", fired.to_json(), 4, "HTTP 500")
    assert store.outbox_counts() == {"webhook": 1}
    (oid, payload), = store.pending("webhook")
    assert payload["alert_id"] == fired.alert.alert_id
    store.delivered(oid)
    assert store.pending("webhook") == []
    store.save_state(engine.snapshot())
    assert store.load_state() == engine.snapshot()
    store.close()
    ro = AlertStore(tmp_path / "gulou.db", readonly=True)
    assert len(ro.alerts()) == 1
    ro.close()


def test_service_state_survives_restart(tmp_path: Path, registry: Registry) -> None:
    from gulou.rules.service import RulesService
    from gulou.settings import Settings

    r = rule("kind: window\ndomain: waste\nmetric: nh3\nagg: mean\nwindow_s: 3600\nmin_count: 3\nop: '>'\n"
             "limit: 1.5")
    bin_ = registry.get("bin-001-rec")
    assert bin_ is not None
    settings = Settings(store=tmp_path / "gulou.db")
    store = AlertStore(settings.store)
    first = RulesService(settings, registry, [r], store=store, channels=[])
    first.engine.process(reading(bin_, at(0), nh3=2.0))
    first.engine.process(reading(bin_, at(1), nh3=2.0))
    first.save_state()
    store.close()
    store = AlertStore(settings.store)
    second = RulesService(settings, registry, [r], store=store, channels=[])
    assert events(second.engine.process(reading(bin_, at(2), nh3=2.0))) == ["firing"]
    store.close()
