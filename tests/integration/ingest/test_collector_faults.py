"""The collector on the embedded broker, and behind a connection that goes deaf while staying open."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gulou.devices.registry import Registry
from gulou.ingest.collector import Collector, CollectorConfig
from gulou.settings import BrokerAddress
from gulou.sinks.embedded import EmbeddedStore
from gulou.sinks.embedded_queries import rfc3339
from gulou.sources.mqtt import MqttSource, default_link
from tests.integration.ingest.pipeline import (
    Message,
    Publisher,
    accounted,
    reading_keys,
    start_ingest,
    stop_ingest,
    telemetry_set,
)
from tests.integration.ingest.tcp_proxy import FreezingProxy
from tests.servers import Mosquitto
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


def test_embedded_broker_every_message_stored(embedded_broker: str, registry: Registry, tmp_path: Path) -> None:
    store = tmp_path / "g.db"
    cid = "it-embedded"
    # amqtt speaks MQTT 3.1.1 only and has no shared subscriptions.
    proc = start_ingest(embedded_broker, store, cid, "--mqtt", "3.1.1", "--no-share")
    try:
        wait_for(lambda: proc.poll() is not None
                 or (store.exists() and accounted(store)["collectors"].get(cid, {}).get("connected", False)),
                 20, "collector connected")
        assert proc.poll() is None, stop_ingest(proc)
        messages = telemetry_set(registry, 1000, invalid_every=10)
        port = urlsplit(embedded_broker).port
        assert port is not None
        pub = Publisher(port, "it-pub-embedded")
        pub.publish(messages)
        pub.close()
        wait_for(lambda: accounted(store)["received"] >= len(messages), 30, "every message received")
    finally:
        log = stop_ingest(proc)
    stats = accounted(store)
    valid = sum(m.valid for m in messages)
    assert stats["received"] == len(messages), log
    assert stats["stored"] == valid == 900
    assert stats["rejected"] == 100
    assert stats["by_reason"] == {"malformed_json": 50, "unknown_device": 50}
    assert reading_keys(store) == expected_keys(messages)
    assert "stopped: received 1000" in log


def expected_keys(messages: list[Message]) -> set[tuple[str, str]]:
    """(device, ts) the valid messages must leave in the readings table, as ``reading_keys`` reports them."""
    return {(m.topic.split("/")[2], rfc3339(json.loads(m.payload)["ts"])) for m in messages if m.valid}


def wait_subscribed(port: int, client_id: str, timeout: float = 10) -> None:
    """Block until the broker relays the collector's probe, so its SUBSCRIBE, sent first, is in effect.

    The link reports itself connected once it has sent SUBSCRIBE; a message published before the broker
    processed it would have no subscriber yet, so the test waits for proof rather than a delay.
    """
    seen = threading.Event()
    watcher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{client_id}-watcher")
    watcher.on_connect = lambda c, *_: c.subscribe(f"gulou/_probe/{client_id}")
    watcher.on_message = lambda *_: seen.set()
    watcher.connect("127.0.0.1", port)
    watcher.loop_start()
    try:
        assert seen.wait(timeout), "the collector's probe never reached the broker"
    finally:
        watcher.disconnect()
        watcher.loop_stop()


@pytest.fixture
def proxy(own_mosquitto: Mosquitto) -> Iterator[FreezingProxy]:
    """A freezable proxy in front of the private Mosquitto."""
    with FreezingProxy(own_mosquitto.port) as p:
        yield p


def test_stalled_subscription_detected_and_reconnected(own_mosquitto: Mosquitto, proxy: FreezingProxy,
                                                       registry: Registry, tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gulou.sources.mqtt")
    cid = "it-stall"
    store = EmbeddedStore(tmp_path / "g.db")
    # No CLI flag sets the probe: run the collector in-process with a probe fast enough for a test.
    link = default_link(cid, None, probe_interval_s=0.5, stall_after_s=2.0)
    source = MqttSource(BrokerAddress(host="127.0.0.1", port=proxy.port, tls=False), link)
    collector = Collector(source, registry, store, config=CollectorConfig(health_interval_s=0.3))
    first = telemetry_set(registry, 300)
    second = telemetry_set(registry, 300, offset=300)
    collector.start()
    try:
        assert collector.source.wait_connected(10), "collector did not connect through the proxy"
        wait_subscribed(own_mosquitto.port, cid)
        pub = Publisher(own_mosquitto.port, "it-pub-stall")
        pub.publish(first)
        wait_for(lambda: store.stats()["received"] == len(first), 10, "first part stored")
        assert not collector.source.stalled and collector.source.reconnects == 0

        proxy.freeze()
        pub.publish(second)  # the broker sends these down the connection that no longer delivers
        wait_for(lambda: collector.source.stalled, 20, "stall detected")
        # Detected from the missing probe echo (stall_after_s), not from the 30 s keepalive: the link is still
        # up, and the only path that marks it stalled is the probe check, which says so in its log line.
        assert link.keepalive_s > 20
        assert any("no probe echo" in r.getMessage() for r in caplog.records), "stall not found by the probe"
        wait_for(lambda: collector.source.reconnects >= 1 and proxy.accepted >= 2, 10, "reconnect through the proxy")
        wait_for(lambda: store.stats()["collectors"].get(cid, {}).get("stalled") is True, 5, "health shows stalled")
        assert store.stats()["received"] == len(first), "nothing can arrive while the proxy is frozen"
        stalls = [r for r in caplog.records if "subscription stalled" in r.getMessage()]
        assert stalls and all(r.levelno == logging.ERROR for r in stalls)

        proxy.thaw()
        wait_for(lambda: store.stats()["received"] >= len(first) + len(second), 20, "second part after the thaw")
        wait_for(lambda: collector.source.connected and not collector.source.stalled, 10, "link healthy again")
        wait_for(lambda: store.stats()["collectors"][cid]["connected"] is True, 5, "health shows connected")
        health = store.stats()["collectors"][cid]
        pub.close()
    finally:
        collector.stop()
    stats = store.stats()
    store.close()
    messages = first + second
    assert stats["received"] == stats["stored"] == len(messages)  # each message exactly once
    assert stats["rejected"] == stats["spooled"] == 0
    assert reading_keys(tmp_path / "g.db") == expected_keys(messages)
    assert health["stalled"] is False and health["reconnects"] >= 1
