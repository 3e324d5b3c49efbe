"""The MQTT hop when scaling: reconnect after a broker restart, and draining a departing collector's session."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gulou.devices.registry import Registry
from gulou.settings import BrokerAddress
from gulou.sources.base import Delivery
from gulou.sources.mqtt import MqttSource, default_link
from tests.integration.ingest.pipeline import (
    Publisher,
    accounted,
    reading_keys,
    start_ingest,
    stop_ingest,
    telemetry_set,
)
from tests.servers import Mosquitto
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


def test_reconnects_quickly_after_broker_restart_and_loses_nothing(own_mosquitto: Mosquitto,
                                                                    registry: Registry) -> None:
    messages = telemetry_set(registry, 1000)
    got: list[Delivery] = []
    lock = threading.Lock()
    source = MqttSource(BrokerAddress(host="127.0.0.1", port=own_mosquitto.port, tls=False),
                        default_link("it-hop-restart", share_group=None))

    def deliver(d: Delivery) -> None:
        with lock:
            got.append(d)
        source.ack([d])  # stored at once, for this test

    def seqs() -> set[int]:
        with lock:
            return {json.loads(d.payload)["seq"] for d in got}

    source.start(deliver)
    pub: Publisher | None = None
    try:
        assert source.wait_connected(20), "source never connected"
        pub = Publisher(own_mosquitto.port, "it-hop-pub")
        pub.publish(messages[:500])
        wait_for(lambda: len(seqs()) >= 500, 30, "the first half delivered")
        own_mosquitto.stop()
        wait_for(lambda: not source.connected, 15, "the source to notice the broker is gone")
        # While the collector is away, the publisher queues the rest; the broker then keeps it in the
        # collector's persistent (non-shared) session until the collector is back.
        first_half = threading.Thread(target=pub.publish, args=(messages[500:],), daemon=True)
        first_half.start()
        own_mosquitto.start()
        up = time.monotonic()
        wait_for(lambda: source.connected, 30, "the source to reconnect to the restarted broker")
        print(f"reconnected {time.monotonic() - up:.2f} s after the broker listened again")
        first_half.join(90)
        assert not first_half.is_alive(), "publisher did not finish after the broker came back"
        wait_for(lambda: len(seqs()) >= len(messages), 60, "every message delivered after the restart")
    finally:
        source.stop()
        if pub is not None:
            pub.close()
    assert seqs() == {json.loads(m.payload)["seq"] for m in messages}
    assert source.reconnects >= 1


def _session_present(port: int, client_id: str) -> bool:
    """Connect once as ``client_id`` keeping any session, and report whether the broker still had one."""
    present: list[bool] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5)
    client.on_connect = lambda _c, _u, flags, _rc, _p: present.append(bool(flags.session_present))
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 0  # this probe must not leave a session behind itself
    client.connect("127.0.0.1", port, clean_start=False, properties=props)
    client.loop_start()
    try:
        wait_for(lambda: present, 15, f"CONNACK for {client_id}")
    finally:
        client.disconnect()
        client.loop_stop()
    return present[0]


@pytest.mark.parametrize("share", [True, False], ids=["shared-group", "own-sessions"])
def test_drain_of_a_departing_collector_stores_every_reading_once(own_mosquitto: Mosquitto, registry: Registry,
                                                                  tmp_path: Path, share: bool) -> None:
    store = tmp_path / "g.db"
    extra = () if share else ("--no-share",)
    slots = {cid: start_ingest(own_mosquitto.url, store, cid, *extra) for cid in ("it-slot-1", "it-slot-2")}
    messages = telemetry_set(registry, 2000)
    later = telemetry_set(registry, 500, offset=2000)
    try:
        wait_for(lambda: store.exists() and set(slots) <= set(accounted(store)["collectors"]), 30,
                 "both collectors up")
        # Slot 2 leaves: its persistent session stays subscribed (a member of the share group, or a plain
        # subscriber that gets every message) and the broker queues for it.
        log2 = stop_ingest(slots.pop("it-slot-2"))
        assert "stopped:" in log2, log2
        pub = Publisher(own_mosquitto.port, "it-drain-pub")
        pub.publish(messages)
        drain = subprocess.run(
            [sys.executable, "-m", "gulou", "ingest", "--broker", own_mosquitto.url, "--store", str(store),
             "--client-id", "it-slot-2", "--drain", "--log-level", "INFO"],
            capture_output=True, text=True, timeout=120,
        )
        assert drain.returncode == 0, drain.stdout + drain.stderr
        out = drain.stdout + drain.stderr
        drained = re.search(r"drained it-slot-2: received (\d+)", out)
        assert drained is not None and "session ended" in out, out
        # The broker had kept slot 2's share (or, subscribed on its own, every message) in its session.
        drained_n = int(drained.group(1))
        assert 0 < drained_n < len(messages) if share else drained_n == len(messages), out
        wait_for(lambda: len(reading_keys(store)) >= len(messages), 60, "every reading stored after the drain")
        assert not _session_present(own_mosquitto.port, "it-slot-2"), "the drained session is still there"
        # With the departed session gone, nothing more is routed to it: slot 1 gets every later message.
        pub.publish(later)
        pub.close()
        total = len(messages) + len(later)
        expected = total + (0 if share else drained_n)  # without sharing, slot 1 had stored them too
        wait_for(lambda: accounted(store)["stored"] >= expected, 60, "later messages stored by slot 1")
    finally:
        log1 = "".join(stop_ingest(p) for p in slots.values())
    stats = accounted(store)
    assert len(reading_keys(store)) == total, log1
    # Each delivery once (no redelivery), each reading once in the store (idempotent on device and time).
    assert stats["received"] == stats["stored"] == expected, stats
    assert stats["rejected"] == 0

