"""Readings published to a real Mosquitto → the rules service fires and resolves alerts → webhook, MQTT, store."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from click.testing import CliRunner

from gulou.cli import cli
from gulou.devices.contract import status_topic, telemetry_topic
from gulou.devices.registry import Registry
from gulou.rules.alert_store import AlertStore
from gulou.rules.model import load_rules
from gulou.rules.service import MqttSource, RulesService
from gulou.settings import Settings, parse_broker_url
from tests.integration.rules.helpers import Webhook, delivered_everywhere
from tests.servers import Mosquitto
from tests.waiting import wait_for_async

pytestmark = pytest.mark.integration
SECRET = "webhook-test-secret"


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    """An endpoint that answers 500 to its first six posts."""
    hook = Webhook(SECRET, fail_first=6)
    yield hook
    hook.close()


BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
CALM: dict[str, dict[str, float]] = {
    "bin-001-rec": {"fill_level": 0.3, "temperature": 22.0},
    "wq-baima-01": {"ph": 7.2, "do": 6.5, "codmn": 3.5, "nh3n": 0.4, "tp": 0.08, "transparency": 60.0, "orp": 180.0},
    "pk-001": {"total_spots": 200, "occupied_spots": 100},
    "st-001-ne": {"vibration": 0.5},
}
# (device, minutes after BASE, values): each incident starts and ends.
SEQUENCE: list[tuple[str, int, dict[str, float]]] = [
    ("bin-001-rec", 0, {"temperature": 70.0}),
    ("wq-baima-01", 0, {"do": 1.5}),
    ("wq-baima-01", 5, {"do": 1.5}),
    ("wq-baima-01", 10, {"do": 1.5}),  # the class rule needs three consecutive readings worse than target
    ("pk-001", 0, {"occupied_spots": 199}),
    ("st-001-ne", 0, {"vibration": 5.0}),
    ("bin-001-rec", 30, {"temperature": 21.0}),
    ("wq-baima-01", 30, {"do": 6.5}),
    ("pk-001", 30, {"occupied_spots": 100}),
    ("st-001-ne", 30, {"vibration": 0.4}),
    ("bin-001-rec", 35, {"temperature": 21.0}),  # a second calm reading: the 5-min rise is 0 again
]
EXPECTED = {("waste-bin-fire-temperature", "bin-001-rec"), ("water-do-below-2", "wq-baima-01"),
            ("parking-tight", "pk-001"), ("parking-full", "pk-001"), ("structure-vibration", "st-001-ne"),
            ("waste-bin-fire-rise", "bin-001-rec"), ("water-class-worse-than-target", "wq-baima-01"),
            # DO 1.5 three times in a row is also black-odorous water in the light band.
            ("water-black-odour-light", "wq-baima-01")}




async def _scenario(url: str, registry: Registry, hook: Webhook, store_path: Path) -> dict[str, Any]:
    settings = Settings(broker=url, webhook_url=hook.url, webhook_secret=SECRET, store=store_path)
    broker = parse_broker_url(url)
    store = AlertStore(store_path)
    service = RulesService(settings, registry, load_rules(), store=store, broker=broker, clock="event",
                           retry_attempts=2, retry_backoff_s=0.05, redeliver_s=0.2, renotify_s=None)
    source = MqttSource(settings, broker, service)
    seen_mqtt: list[dict[str, Any]] = []

    async def subscribe(ready: asyncio.Event) -> None:
        async with aiomqtt.Client(broker.host, broker.port, identifier="gulou-test-alert-sub") as client:
            await client.subscribe("gulou/alerts/#", qos=1)
            ready.set()
            async for message in client.messages:
                assert message.topic.matches("gulou/alerts/+/+")
                seen_mqtt.append({"topic": message.topic.value, **json.loads(bytes(message.payload))})

    async with asyncio.TaskGroup() as tg:
        ready = asyncio.Event()
        tasks = [tg.create_task(service.run()), tg.create_task(source.run()), tg.create_task(subscribe(ready))]
        await asyncio.wait_for(source.connected.wait(), 10)
        await asyncio.wait_for(ready.wait(), 10)
        await wait_for_async(service.channels_ready, 10, "every channel ready")
        async with aiomqtt.Client(broker.host, broker.port, identifier="gulou-test-rules-pub") as pub:
            for device_id, values in CALM.items():
                d = registry.get(device_id)
                assert d is not None
                body = {"ts": (BASE - timedelta(minutes=5)).isoformat(), **values}
                await pub.publish(telemetry_topic(d.domain, d.id), json.dumps(body), qos=1)
            for device_id, minutes, values in SEQUENCE:
                d = registry.get(device_id)
                assert d is not None
                body = {"ts": (BASE + timedelta(minutes=minutes)).isoformat(), **CALM[device_id], **values}
                await pub.publish(telemetry_topic(d.domain, d.id), json.dumps(body), qos=1)
            # A device going offline by its status topic (its last will).
            sensor = registry.get("aq-001")
            assert sensor is not None
            await pub.publish(status_topic("air", "aq-001"), json.dumps(
                {"ts": (BASE + timedelta(minutes=31)).isoformat(), "state": "offline"}), qos=1, retain=True)
            await pub.publish(status_topic("air", "aq-001"), b"", qos=1, retain=True)  # clear the retained one
        want = len(EXPECTED) * 2 + 1
        await wait_for_async(lambda: len(seen_mqtt) >= want, 30, f"{want} alerts on MQTT")
        await wait_for_async(lambda: len(hook.received) >= want, 30, f"{want} posts at the webhook")
        await delivered_everywhere(service, lambda: len(seen_mqtt))
        service.stop()
        await tasks[0]
        for t in tasks[1:]:
            t.cancel()
    store.close()
    return {"mqtt": seen_mqtt, "stats": service.stats()}


@pytest.mark.timeout(120)
def test_service_fires_resolves_and_delivers(mosquitto: Mosquitto, registry: Registry, webhook: Webhook,
                                             tmp_path: Path) -> None:
    store_path = tmp_path / "gulou.db"
    result = asyncio.run(_scenario(mosquitto.url, registry, webhook, store_path))
    mqtt = result["mqtt"]
    pairs = {(m["rule_id"], m["device_id"], m["event"]) for m in mqtt}
    for rule_id, device_id in EXPECTED:
        assert (rule_id, device_id, "firing") in pairs
        assert (rule_id, device_id, "resolved") in pairs
    assert ("device-offline-air", "aq-001", "firing") in pairs
    for m in mqtt:
        assert m["topic"] == f"gulou/alerts/{m['domain']}/{m['device_id']}"
    # The webhook failed its first six posts, yet every alert reached it, every body correctly signed.
    assert webhook.failed == 6 and webhook.bad_signatures == 0
    hooked = {(m["alert_id"], m["event"]) for m in webhook.received}
    assert hooked == {(m["alert_id"], m["event"]) for m in mqtt}
    fire = next(m for m in mqtt if m["rule_id"] == "waste-bin-fire-temperature" and m["event"] == "firing")
    assert datetime.fromisoformat(fire["first_seen"]) == BASE and fire["value"] == 70.0 and fire["limit"] == 60.0
    assert fire["exceedance"] == pytest.approx(10 / 60) and "疑似起火" in fire["message"]
    # The store holds the history, and `gulou alerts` reads it.
    out = CliRunner().invoke(cli, ["alerts", "--store", str(store_path), "--json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert {(r["rule_id"], r["device_id"]) for r in rows if r["state"] == "resolved"} == EXPECTED
    active = json.loads(CliRunner().invoke(cli, ["alerts", "--active", "--store", str(store_path), "--json"]).output)
    assert [(r["rule_id"], r["device_id"]) for r in active] == [("device-offline-air", "aq-001")]
    for key in ("rule_id", "device_id", "site", "state", "severity", "value", "limit", "standard", "first_seen",
                "last_seen"):
        assert key in rows[0]
    assert result["stats"]["dropped"] == 0
