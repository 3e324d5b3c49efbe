"""Helpers for the collector integration tests: publishers, payload sets, waiting on the store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gulou.devices.registry import Registry
from gulou.sinks.embedded import EmbeddedStore
from tests.waiting import wait_for

BASE_MS = int(time.time() * 1000) - 6 * 3600 * 1000  # six hours ago: valid, not in the future


@dataclass(frozen=True)
class Message:
    """A message to publish and what the collector should make of it."""

    topic: str
    payload: bytes
    valid: bool


def telemetry_set(registry: Registry, count: int, offset: int = 0, invalid_every: int = 0) -> list[Message]:
    """``count`` messages over air and parking devices with distinct (device, ts); every n-th one invalid."""
    devices = [d for d in registry if d.type in ("air_station", "parking_lot")]
    out: list[Message] = []
    for i in range(offset, offset + count):
        d = devices[i % len(devices)]
        ts = BASE_MS + i * 1000
        if invalid_every and i % invalid_every == 0:
            # Alternate between reasons so by_reason has more than one entry.
            if (i // invalid_every) % 2:
                out.append(Message(f"gulou/{d.domain}/{d.id}/telemetry", b'{"ts": 1, broken', False))
            else:
                ghost = json.dumps({"ts": ts, "pm25": 1.0}).encode()
                out.append(Message(f"gulou/{d.domain}/ghost-{i}/telemetry", ghost, False))
            continue
        body: dict[str, Any] = {"ts": ts, "seq": i}
        if d.type == "air_station":
            body.update(pm25=20.0 + i % 50, pm10=40.0)
        else:
            body.update(total_spots=d.site.capacity, occupied_spots=i % (d.site.capacity or 1))
        out.append(Message(f"gulou/{d.domain}/{d.id}/telemetry", json.dumps(body).encode(), True))
    return out


class Publisher:
    """A QoS 1 paho publisher with a persistent session, so it survives broker restarts without loss."""

    def __init__(self, port: int, client_id: str) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        self.client.max_inflight_messages_set(200)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(1, 2)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.issued = 0  # messages handed to paho so far (sent, or queued while disconnected)

    def publish(self, messages: Iterable[Message], pace: Callable[[int], None] | None = None) -> None:
        """Publish and wait until the broker acknowledged every message."""
        infos = []
        for n, m in enumerate(messages):
            infos.append(self.client.publish(m.topic, m.payload, qos=1))
            self.issued += 1
            if pace is not None:
                pace(n)
        # Poll paho's own flag rather than wait_for_publish(): that raises for messages queued while
        # disconnected (rc NO_CONN), which paho still sends after it reconnects and marks published on PUBACK.
        wait_for(lambda: all(info._published for info in infos), 90, "the broker to acknowledge every message")

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()


def accounted(store_path: Path) -> dict[str, Any]:
    """The store's stats, from a fresh reader connection (as another process would see them)."""
    store = EmbeddedStore(store_path)
    try:
        return store.stats()
    finally:
        store.close()


def settled(store_path: Path, total: int) -> bool:
    """Whether ``total`` messages have been received and each stored, dead-lettered or spooled."""
    s = accounted(store_path)
    return bool(s["received"] >= total and s["stored"] + s["rejected"] + s["spooled"] >= total)


def reading_keys(store_path: Path) -> set[tuple[str, str]]:
    """(device, ts) of every stored reading."""
    store = EmbeddedStore(store_path)
    try:
        rows = store.query_readings(None, None, None, None, None)
    finally:
        store.close()
    return {(r["device_id"], r["ts"]) for r in rows}


def start_ingest(broker_url: str, store: Path, client_id: str, *extra: str,
                 env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Run ``gulou ingest`` as a real process."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "gulou", "ingest", "--broker", broker_url, "--store", str(store), "--client-id",
         client_id, "--log-level", "INFO", *extra],
        env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


class LogFollower:
    """Reads a process's output line by line as it comes, so a test can wait on what the process logged."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None, "start the process with stdout=PIPE"
        self.lines: list[str] = []
        self._lock = threading.Lock()
        stream = proc.stdout

        def read() -> None:
            for raw in stream:
                with self._lock:
                    self.lines.append(raw.decode(errors="replace"))

        self.thread = threading.Thread(target=read, name=f"log-{proc.pid}", daemon=True)
        self.thread.start()

    def count(self, fragment: str) -> int:
        """How many lines so far contain ``fragment``."""
        with self._lock:
            return sum(fragment in line for line in self.lines)

    def text(self) -> str:
        """Everything read so far."""
        with self._lock:
            return "".join(self.lines)


_FOLLOWED: dict[int, LogFollower] = {}


def follow_log(proc: subprocess.Popen[bytes]) -> LogFollower:
    """Start reading a collector's log while it runs (``stop_ingest`` then returns the whole of it)."""
    follower = _FOLLOWED[proc.pid] = LogFollower(proc)
    return follower


def stop_ingest(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> str:
    """Stop a collector process and return its log; one that does not stop within a minute is killed."""
    if proc.poll() is None:
        proc.send_signal(sig)
    follower = _FOLLOWED.pop(proc.pid, None) or LogFollower(proc)
    note = ""
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        # Never leave a collector behind: it would hold its port, its files and the machine's cores.
        proc.kill()
        proc.wait(timeout=30)
        note = f"\n[killed: still running 60 s after signal {sig}]\n"
    follower.thread.join(timeout=10)
    return follower.text() + note


def run_in_thread(target: Callable[[], None]) -> threading.Thread:
    """Start a daemon thread (publishers running while the test injects a fault)."""
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread
