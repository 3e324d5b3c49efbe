"""MQTT clients of the stack test: devices on the TLS listener, subscribers on the services' listener."""

from __future__ import annotations

import json
import ssl
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode


@dataclass
class Connection:
    """A connected paho client and what its CONNACK said."""

    client: mqtt.Client
    session_present: bool
    reason: str
    messages: list[mqtt.MQTTMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self) -> list[mqtt.MQTTMessage]:
        """A copy of the messages delivered so far."""
        with self.lock:
            return list(self.messages)

    def publish(self, topic: str, payload: dict[str, Any] | bytes, qos: int = 1, retain: bool = False) -> None:
        """Publish and wait for the broker's acknowledgement."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        info = self.client.publish(topic, body, qos=qos, retain=retain)
        info.wait_for_publish(timeout=10)
        if not info.is_published():
            raise AssertionError(f"publish to {topic} not acknowledged")

    def close(self) -> None:
        """Disconnect cleanly and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()


def connect(port: int, username: str, password: str, *, client_id: str = "", ca_file: Path | None = None,
            clean_session: bool = True, subscribe: str | None = None, timeout: float = 10) -> Connection:
    """Connect (MQTT 3.1.1, TLS when ``ca_file`` is given) and wait for the CONNACK, refused or not."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv311,
                         clean_session=clean_session)
    client.username_pw_set(username, password)
    if ca_file is not None:
        client.tls_set(ca_certs=str(ca_file), cert_reqs=ssl.CERT_REQUIRED)
    done = threading.Event()
    subscribed = threading.Event()
    conn = Connection(client, False, "no CONNACK")

    def on_connect(c: mqtt.Client, _u: object, flags: mqtt.ConnectFlags, rc: ReasonCode, _p: object) -> None:
        conn.session_present = bool(flags.session_present)
        conn.reason = str(rc)
        if not rc.is_failure and subscribe is not None:
            c.subscribe(subscribe, qos=1)
        elif subscribe is None:
            subscribed.set()
        done.set()

    def on_subscribe(_c: mqtt.Client, _u: object, _mid: int, _codes: object, _p: object) -> None:
        subscribed.set()

    def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        with conn.lock:
            conn.messages.append(message)

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect("127.0.0.1" if ca_file is None else "localhost", port, keepalive=30)
    client.loop_start()
    if not done.wait(timeout):
        client.loop_stop()
        raise AssertionError(f"no CONNACK from port {port} for {username}")
    if conn.reason == "Success" and not subscribed.wait(timeout):
        raise AssertionError(f"{username}: no SUBACK for {subscribe}")
    return conn


def reading(seconds_ago: float = 0.0, **metrics: Any) -> dict[str, Any]:
    """A telemetry payload observed now (or that many seconds ago: readings at one instant overwrite each other)."""
    ts = datetime.now(UTC) - timedelta(seconds=seconds_ago)
    return {"ts": ts.isoformat(timespec="milliseconds"), **metrics}
