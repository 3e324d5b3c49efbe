"""Stations → gateway → real Mosquitto → the collector's embedded store, with the faults of the field."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gulou.devices.registry import Registry
from gulou.hj212 import build
from gulou.hj212.downstream import DEADLETTER_TOPIC, Downstream
from gulou.hj212.mqtt import MqttDownstream
from gulou.hj212.simulator import FAULTS, FaultPlan, StationEncoder
from gulou.hj212.station_client import SimulatedStation, StationClient, run_stations
from gulou.sinks.embedded import EmbeddedStore
from tests.integration.hj212.running import GatewayThread, Station, wait_until
from tests.integration.ingest.pipeline import accounted, start_ingest, stop_ingest
from tests.servers import Mosquitto
from tests.unit.hj212.samples import PASSWORD, air_station, book, water_station

pytestmark = pytest.mark.integration
VALUES = {"pm25": 38.5, "pm10": 61.2, "so2": 6.0, "no2": 41.2, "o3": 52.0, "co": 0.7, "temperature": 17.8,
          "humidity": 72.0}


def _mqtt(port: int, client_id: str, downstreams: list[MqttDownstream] | None = None,
          timeout_s: float = 10.0) -> Callable[[], Awaitable[Downstream]]:
    async def factory() -> Downstream:
        downstream = MqttDownstream("127.0.0.1", port, client_id=client_id, extended=False, timeout_s=timeout_s)
        await downstream.start()
        if downstreams is not None:
            downstreams.append(downstream)
        return downstream
    return factory


def _rows(store: Path, device: str) -> list[dict[str, object]]:
    reader = EmbeddedStore(store)
    try:
        return reader.query_readings(None, device, None, None, None)
    finally:
        reader.close()


def _collector(broker: Mosquitto, store: Path, client_id: str) -> subprocess.Popen[bytes]:
    proc = start_ingest(broker.url, store, client_id, "--no-share")
    wait_until(lambda: store.exists() and client_id in accounted(store)["collectors"], 30, "collector up")
    return proc


def test_a_resend_after_a_lost_9014_is_stored_once(own_mosquitto: Mosquitto, tmp_path: Path) -> None:
    store = tmp_path / "g.db"
    proc = _collector(own_mosquitto, store, "it-hj212-once")
    moment = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    encoder = StationEncoder(air_station(), PASSWORD)
    (packet,) = encoder.data("rtd", moment, VALUES, faults=frozenset({"lost_ack"}))
    try:
        with GatewayThread(book(), _mqtt(own_mosquitto.port, "it-hj212-gw1")) as gw:
            async def send() -> tuple[bool, dict[str, int]]:
                client = StationClient(encoder, "127.0.0.1", gw.port, ack_timeout_s=1.0)
                await client.connect()
                try:
                    return await client.send(packet), dict(client.stats)
                finally:
                    await client.close()

            acked, stats = asyncio.run(send())
            assert acked and stats["acks_lost"] == 1 and stats["resent"] == 1
            packets = gw.stats()["packets"]
            assert (packets["delivered"], packets["duplicate"]) == (1, 1)
        wait_until(lambda: accounted(store)["stored"] == 1, 30, "the reading stored")
        # The gateway restarted between the lost answer and the resend: it no longer knows the packet and
        # publishes it again; the store keeps one reading for (device, time).
        with GatewayThread(book(), _mqtt(own_mosquitto.port, "it-hj212-gw2")) as gw:
            station = Station(gw.port)
            station.send(packet.data)
            assert b"CN=9014" in station.replies(1)[0]
            station.close()
        wait_until(lambda: accounted(store)["received"] == 2, 30, "the resend received by the collector")
    finally:
        stop_ingest(proc)
    rows = _rows(store, "aq-001")
    assert len(rows) == 1
    assert rows[0]["pm25"] == 38.5 and rows[0]["ts"] == moment.isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")
    # so2 and the rest were flagged N; nothing flagged invalid here, so every value is kept.
    assert {k: rows[0][k] for k in VALUES} == VALUES
    assert accounted(store)["rejected"] == 0


def test_no_9014_while_the_broker_is_down_then_stored_once(own_mosquitto: Mosquitto, tmp_path: Path) -> None:
    store = tmp_path / "g.db"
    proc = _collector(own_mosquitto, store, "it-hj212-outage")
    moment = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    encoder = StationEncoder(air_station(), PASSWORD)
    (packet,) = encoder.data("rtd", moment, VALUES)
    try:
        with GatewayThread(book(), _mqtt(own_mosquitto.port, "it-hj212-gw3", timeout_s=2.0)) as gw:
            own_mosquitto.stop()
            station = Station(gw.port)
            station.send(packet.data)
            wait_until(lambda: gw.stats()["packets"]["failed"] >= 1, 30, "the delivery to fail")
            assert not station.has_pending_bytes(), "a 9014 was sent although nothing was accepted downstream"
            own_mosquitto.start()
            wait_until(lambda: proc.poll() is None and accounted(store)["collectors"]["it-hj212-outage"]
                       .get("connected", False), 60, "the collector back on the broker")
            # The station resends, as after any missing answer; now the broker accepts it.
            reply: list[bytes] = []

            def resend() -> bool:
                station.send(packet.data)
                wait_until(lambda: gw.stats()["packets"]["in_flight"] == 0, 30, "the resend handled")
                if gw.stats()["packets"]["delivered"] == 1:
                    reply.extend(station.replies(1))
                    return True
                return False

            wait_until(resend, 60, "a resend accepted once the broker is back")
            station.close()
        assert b"CN=9014" in reply[0]
        wait_until(lambda: accounted(store)["stored"] >= 1, 30, "the reading stored")
    finally:
        stop_ingest(proc)
    assert len(_rows(store, "aq-001")) == 1


def test_dead_letters_are_published_byte_exact(mosquitto: Mosquitto) -> None:
    received: list[dict[str, object]] = []
    subscribed = threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="it-hj212-dl-sub")
    sub.on_subscribe = lambda *args: subscribed.set()
    sub.on_message = lambda _c, _u, msg: received.append(json.loads(msg.payload))
    sub.connect("127.0.0.1", mosquitto.port)
    sub.subscribe(DEADLETTER_TOPIC, qos=1)
    sub.loop_start()
    try:
        assert subscribed.wait(10), "subscription not acknowledged"
        gbk = ("DataTime=20261130093000;i11001-Info=//清洗管路//;a34004-Rtd=1,a34004-Flag=N").encode("gbk")
        bad_crc = b"##%04d" % (len(gbk) + 55) + b"QN=1;ST=22;CN=2011;PW=123456;MN=010000A8900016F000169DC0;" \
                  b"Flag=5;CP=&&" + gbk + b"&&0000\r\n"
        unknown = build.frame(b"QN=2;ST=22;CN=2011;PW=1;MN=NOBODY;Flag=5;CP=&&DataTime=20261130093000&&")
        with GatewayThread(book(), _mqtt(mosquitto.port, "it-hj212-gw4")) as gw:
            station = Station(gw.port)
            station.send(bad_crc, unknown)
            wait_until(lambda: len(received) == 2, 30, "two dead letters on the broker")
            assert not station.has_pending_bytes()
            station.close()
    finally:
        sub.loop_stop()
        sub.disconnect()
    by_reason = {str(letter["reason"]): letter for letter in received}
    assert set(by_reason) == {"bad_crc", "unknown_mn"}
    assert base64.b64decode(str(by_reason["bad_crc"]["raw_b64"])) == bad_crc
    assert base64.b64decode(str(by_reason["unknown_mn"]["raw_b64"])) == unknown
    assert by_reason["unknown_mn"]["mn"] == "NOBODY" and by_reason["bad_crc"]["source"] == "hj212"
    assert str(by_reason["bad_crc"]["received"]).endswith("+08:00")


def test_simulated_stations_with_field_faults_end_to_end(own_mosquitto: Mosquitto, registry: Registry,
                                                         tmp_path: Path) -> None:
    store = tmp_path / "g.db"
    proc = _collector(own_mosquitto, store, "it-hj212-sim")
    downstreams: list[MqttDownstream] = []
    try:
        with GatewayThread(book(air_station(), water_station(), key=b"0" * 16),
                           _mqtt(own_mosquitto.port, "it-hj212-gw5", downstreams)) as gw:
            stations = [
                SimulatedStation(StationEncoder(air_station(), PASSWORD, version=1),
                                 FaultPlan({kind: 0.15 for kind in FAULTS}, seed=5)),
                SimulatedStation(StationEncoder(water_station(), PASSWORD, version=2, sm4_key=b"0" * 16),
                                 FaultPlan({"lost_ack": 0.2, "pnum_split": 0.2, "swapped_crc": 0.2}, seed=6)),
            ]
            start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=3)
            summary = asyncio.run(run_stations("127.0.0.1", gw.port, stations, registry, start=start,
                                               sim_duration_s=3600, ack_timeout_s=0.5))
            stats = gw.stats()
        published = downstreams[0].published
        wait_until(lambda: accounted(store)["received"] >= published, 60, "every publish received")
    finally:
        stop_ingest(proc)
    for figures in summary.values():
        assert figures.get("unacked", 0) == 0 and figures["acked"] > 0
    assert sum(f["faults"].get("lost_ack", 0) for f in summary.values()) > 0
    packets = stats["packets"]
    assert packets["rejected"] == packets["failed"] == packets["in_flight"] == 0
    assert packets["duplicate"] >= 1
    collected = accounted(store)
    assert collected["received"] == published and collected["rejected"] == 0
    assert {"aq-001", "wq-baima-01"} <= {r["device_id"] for r in _rows(store, "aq-001") + _rows(store, "wq-baima-01")}
