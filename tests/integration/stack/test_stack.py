"""The compose stack run from its own files: devices with their own credentials over TLS, storage, alerts,
the stall probe on an idle stack, and a device trying to take the collector's session."""

from __future__ import annotations

import json
import signal
from typing import Any

import pytest

from tests.integration.stack.conftest import ca_file
from tests.integration.stack.devices import Connection, connect, reading
from tests.integration.stack.stack import Stack, until

pytestmark = pytest.mark.integration

# docs/ingest.md: a collector hearing neither its probe echo nor any delivery for 20 s declares itself
# stalled and reconnects; the probe goes out every 5 s.
STALL_AFTER_S = 20.0


def collector_id(stack: Stack) -> str:
    """The fixed client id compose gives collector slot 1."""
    command = stack.services["ingest"].command or []
    assert "--client-id" in command, "the ingest service must name its client id"
    return command[command.index("--client-id") + 1]


def collector_health(stack: Stack) -> dict[str, Any]:
    """`docker compose exec ingest gulou stats --json`, this collector's part ({} before its first report)."""
    done = stack.run("ingest", ["stats", "--json"])
    if done.returncode != 0:
        return {}
    health: dict[str, Any] = json.loads(done.stdout)["collectors"].get(collector_id(stack), {})
    return health


def wait_collector_connected(stack: Stack) -> dict[str, Any]:
    """Block until the collector reports itself connected (its health row is written every 5 s)."""
    def connected() -> dict[str, Any] | None:
        proc = stack.procs["ingest"]
        assert proc.poll() is None, f"ingest exited with {proc.returncode}:\n{stack.log('ingest')}"
        health = collector_health(stack)
        return health if health.get("connected") is True else None

    return until(connected, 30, "the collector to report itself connected", interval=0.5)


def device(stack: Stack, device_id: str, **kwargs: Any) -> Connection:
    """A device on the TLS listener with its own username and password."""
    return connect(stack.port("mosquitto", "8883"), device_id, stack.device_passwords[device_id],
                   ca_file=ca_file(stack), **kwargs)


def service_client(stack: Stack, username: str, password_var: str, **kwargs: Any) -> Connection:
    """A client on the services' listener with a service user's credentials from .env."""
    return connect(stack.port("mosquitto", "1883"), username, stack.dotenv[password_var], **kwargs)


def stored(stack: Stack, metric: str, device_id: str) -> int:
    """Samples of one metric of one device in the time-series store."""
    return sum(len(s["values"]) for s in stack.vm.export(f'{metric}{{device="{device_id}"}}'))


def test_devices_publish_with_their_own_credentials_and_readings_are_stored(stack: Stack) -> None:
    wait_collector_connected(stack)
    refused = connect(stack.port("mosquitto", "8883"), "st-001-ne", "wrong password", ca_file=ca_file(stack))
    assert refused.reason == "Not authorized"
    refused.client.loop_stop()
    # Device credentials do not open the services' listener.
    refused = connect(stack.port("mosquitto", "1883"), "st-001-ne", stack.device_passwords["st-001-ne"])
    assert refused.reason == "Not authorized"
    refused.client.loop_stop()

    ne, sw = device(stack, "st-001-ne"), device(stack, "st-001-sw")
    try:
        for i, value in enumerate((0.4, 0.5, 0.6)):
            ne.publish("gulou/structure/st-001-ne/telemetry", reading(60 - i, vibration=value))
        # st-001-sw speaking for st-001-ne: the broker acknowledges (MQTT 3.1.1 cannot say no) and drops it.
        sw.publish("gulou/structure/st-001-ne/telemetry", reading(vibration=0.7))
        sw.publish("gulou/structure/st-001-sw/telemetry", reading(vibration=0.3))
        until(lambda: stored(stack, "structure_vibration", "st-001-sw") == 1, 30, "st-001-sw's reading stored")
        until(lambda: stored(stack, "structure_vibration", "st-001-ne") >= 3, 30, "st-001-ne's readings stored")
        assert stored(stack, "structure_vibration", "st-001-ne") == 3
    finally:
        ne.close()
        sw.close()
    health = collector_health(stack)
    assert health["rejected"] == 0, health


def test_alerts_reach_an_mqtt_subscriber(stack: Stack) -> None:
    wait_collector_connected(stack)
    subscriber = service_client(stack, "gulou-alerts", "GULOU_ALERTS_PASSWORD", subscribe="gulou/alerts/#")
    ne = device(stack, "st-001-ne")
    try:
        def alerted() -> list[Any]:
            # The rules engine may still be connecting: each new reading over the limit is another chance.
            ne.publish("gulou/structure/st-001-ne/telemetry", reading(vibration=5.0))
            return [m for m in subscriber.received() if m.topic == "gulou/alerts/structure/st-001-ne"]

        messages = until(alerted, 60, "an alert for st-001-ne on gulou/alerts/#", interval=1.0)
    finally:
        ne.close()
        subscriber.close()
    alert = json.loads(messages[0].payload)
    assert alert["rule_id"] == "structure-vibration"
    assert alert["device_id"] == "st-001-ne"
    assert stored(stack, "structure_vibration", "st-001-ne") >= 1


def test_idle_stack_stall_probe_is_heard_and_nothing_stalls(stack: Stack) -> None:
    client_id = collector_id(stack)
    wait_collector_connected(stack)
    # The collector's probe passes the ACL: another gulou-ingest client hears it on the collector's topic.
    listener = service_client(stack, "gulou-ingest", "GULOU_INGEST_PASSWORD", subscribe="gulou/_probe/#")
    try:
        until(lambda: any(m.topic == f"gulou/_probe/{client_id}" for m in listener.received()), 20,
              f"a probe on gulou/_probe/{client_id}")
    finally:
        listener.close()
    # With no device publishing, only the probe's echo keeps the collector from declaring a stall.
    health = until(lambda: (h := collector_health(stack)).get("uptime_s", 0) > STALL_AFTER_S + 10 and h, 60,
                   "the collector to run idle past its stall window", interval=1.0)
    assert health["connected"] is True
    assert health["stalled"] is False
    assert health["reconnects"] == 0
    assert health["received"] == 0
    assert "stalled" not in stack.log("ingest")


def test_a_device_cannot_take_over_the_collectors_session(stack: Stack) -> None:
    client_id = collector_id(stack)
    wait_collector_connected(stack)
    assert stack.stop("ingest") == 0
    # The collector is away; its persistent session queues what the devices publish meanwhile.
    ne = device(stack, "st-001-ne")
    try:
        for i in range(20):
            ne.publish("gulou/structure/st-001-ne/telemetry", reading(60 - i, vibration=0.5, seq=i))
    finally:
        ne.close()
    # A device presents the collector's client id: on the devices' listener its id is its username.
    intruder = device(stack, "st-001-sw", client_id=client_id, clean_session=False, subscribe="gulou/#")
    assert intruder.reason == "Success"
    assert intruder.session_present is False, "the device was handed the collector's session"
    # On the services' listener its credentials are unknown.
    refused = connect(stack.port("mosquitto", "1883"), "st-001-sw", stack.device_passwords["st-001-sw"],
                      client_id=client_id, clean_session=False)
    assert refused.reason == "Not authorized"
    refused.client.loop_stop()
    try:
        stack.start("ingest")
        until(lambda: stored(stack, "structure_vibration", "st-001-ne") == 20, 60,
              "all 20 readings queued for the collector stored after its restart")
    finally:
        intruder.close()
    assert intruder.received() == []


def test_simulator_profile_publishes_through_its_own_user(stack: Stack) -> None:
    wait_collector_connected(stack)
    stack.start("sim")
    try:
        until(lambda: len(stack.vm.export('{__name__=~"device_status_online"}')) >= 10, 60,
              "device statuses from the simulator stored")
        assert stack.procs["sim"].poll() is None, stack.log("sim")
    finally:
        assert stack.stop("sim", signal.SIGINT) in (0, 1, 130), stack.log("sim")
    assert "Not authorized" not in stack.log("sim")
    assert "not authorised" not in stack.log("sim").lower()


def test_broker_health_check_follows_the_broker(broker_stack: Stack) -> None:
    healthy = broker_stack.healthcheck("mosquitto")
    assert healthy.returncode == 0, healthy.stderr.decode()
    broker_stack.stop("mosquitto")
    down = broker_stack.healthcheck("mosquitto")
    assert down.returncode != 0


def test_oversized_payloads_become_dead_letters_or_are_refused(stack: Stack) -> None:
    wait_collector_connected(stack)
    ne = device(stack, "st-001-ne")
    try:
        # 200 kB: over the collector's limit, under the broker's.
        huge = b'{"ts": 0, "pad": "' + b"x" * 200_000 + b'"}'
        ne.publish("gulou/structure/st-001-ne/telemetry", huge)
        ne.publish("gulou/structure/st-001-ne/telemetry", reading(vibration=0.5))
        until(lambda: stored(stack, "structure_vibration", "st-001-ne") == 1, 30, "the reading after it stored")
    finally:
        ne.close()
    done = stack.run("ingest", ["deadletters", "--json"])
    assert done.returncode == 0, done.stderr.decode()
    [letter] = json.loads(done.stdout)
    assert letter["reason"] == "payload_too_large"
    assert f"{len(huge)} bytes" in letter["detail"]
    assert 0 < len(letter["payload"]) <= 4096
    # 2 MB: the broker disconnects the sender instead of passing it on.
    big = device(stack, "st-001-sw")
    info = big.client.publish("gulou/structure/st-001-sw/telemetry", b"x" * 2_000_000, qos=1)
    until(lambda: not big.client.is_connected(), 30, "the broker to drop a client sending 2 MB")
    assert not info.is_published()
    big.client.loop_stop()
    # The collector's own report is rewritten every 5 s: wait for one written after the dead letter.
    health = until(lambda: (h := collector_health(stack)).get("rejected") == 1 and h, 30,
                   "the collector's report to count the dead letter")
    assert health["connected"] is True and health["rejected"] == 1
