"""A fast MQTT 3.1.1 publisher: pre-encoded PUBLISH packets written straight to a socket.

One generator serves both measurements of the ingest benchmark (raw broker ceiling and the full
pipeline), so the publisher costs the same CPU in both. Run as ``python -m gulou.bench.loadgen``.
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterator


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(s: str) -> bytes:
    raw = s.encode()
    return struct.pack("!H", len(raw)) + raw


def connect_packet(client_id: str, keepalive: int = 60) -> bytes:
    """CONNECT, MQTT 3.1.1, clean session."""
    body = _string("MQTT") + bytes([4, 0x02]) + struct.pack("!H", keepalive) + _string(client_id)
    return bytes([0x10]) + _remaining_length(len(body)) + body


def publish_packet(topic: str, payload: bytes, qos: int, packet_id: int = 0) -> bytes:
    """PUBLISH with the given QoS (packet id only for QoS 1)."""
    body = _string(topic) + (struct.pack("!H", packet_id) if qos else b"") + payload
    return bytes([0x30 | (qos << 1)]) + _remaining_length(len(body)) + body


def messages(count: int, devices: list[tuple[str, str]]) -> Iterator[tuple[str, bytes]]:
    """Contract-valid air/parking/... payloads cycling over the given (domain, device_id) pairs.

    ``ts`` is the wall time when the message is built (just before it is sent), so the benchmark can
    measure end-to-end latency; it is kept strictly increasing per device so every message is a distinct
    reading rather than an idempotent overwrite.
    """
    templates = {
        "air": '{"ts":%d,"seq":%d,"pm25":35.5,"pm10":60.1,"no2":40.2,"o3":80.3,"co":0.8,"so2":6.1}',
        "water": '{"ts":%d,"seq":%d,"ph":7.1,"do":5.2,"codmn":4.4,"nh3n":0.9,"tp":0.18,"orp":120.0}',
        "waste": '{"ts":%d,"seq":%d,"fill_level":0.52,"weight":60.5,"temperature":21.5}',
        "parking": '{"ts":%d,"seq":%d,"total_spots":500,"occupied_spots":321}',
        "structure": '{"ts":%d,"seq":%d,"tilt_x":0.31,"tilt_y":0.12,"crack_width":0.2,"settlement":1.5}',
    }
    last = [0] * len(devices)
    for i in range(count):
        k = i % len(devices)
        domain, device = devices[k]
        ts = max(int(time.time() * 1000), last[k] + 1)
        last[k] = ts
        yield f"gulou/{domain}/{device}/telemetry", (templates[domain] % (ts, i)).encode()


def publish(host: str, port: int, qos: int, count: int, devices: list[tuple[str, str]], client_id: str,
            rate: float = 0.0, window: int = 2000) -> dict[str, float]:
    """Publish ``count`` messages; for QoS 1 wait for every PUBACK. Returns timing figures."""
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(connect_packet(client_id))
    connack = sock.recv(4)
    if len(connack) < 4 or connack[0] != 0x20 or connack[3] != 0:
        raise ConnectionError(f"broker refused CONNECT: {connack!r}")
    acked = 0
    slots = threading.Semaphore(window)
    done = threading.Event()

    def read_acks() -> None:
        nonlocal acked
        buf = b""
        while acked < count:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
            whole = len(buf) - len(buf) % 4  # PUBACK is 4 bytes: 0x40 0x02 id id
            acked += whole // 4
            for _ in range(whole // 4):
                slots.release()
            buf = buf[whole:]
        done.set()

    reader = threading.Thread(target=read_acks, daemon=True)
    if qos:
        reader.start()
    started = time.perf_counter()
    pending: list[bytes] = []
    for n, (topic, payload) in enumerate(messages(count, devices)):
        if qos:
            slots.acquire()
        pending.append(publish_packet(topic, payload, qos, (n % 65535) + 1))
        if len(pending) >= 64 or qos:
            sock.sendall(b"".join(pending))
            pending.clear()
        if rate and n % 256 == 0:
            ahead = n / rate - (time.perf_counter() - started)
            if ahead > 0:
                time.sleep(ahead)
    if pending:
        sock.sendall(b"".join(pending))
    sent = time.perf_counter()
    if qos:
        done.wait(timeout=600)
    finished = time.perf_counter()
    sock.sendall(b"\xe0\x00")  # DISCONNECT
    sock.close()
    return {"published": count, "acked": acked if qos else count, "send_s": sent - started,
            "total_s": finished - started}


def main(argv: list[str] | None = None) -> None:
    """CLI for the generator; prints its figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--qos", type=int, choices=(0, 1), default=1)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--devices", required=True, help="file of 'domain device_id' lines")
    parser.add_argument("--client-id", default="gulou-loadgen")
    parser.add_argument("--rate", type=float, default=0.0, help="messages/s cap (0 = flat out)")
    args = parser.parse_args(argv)
    with open(args.devices, encoding="utf-8") as fh:
        devices = [tuple(line.split()) for line in fh if line.strip()]
    result = publish(args.host, args.port, args.qos, args.count, devices, args.client_id, args.rate)  # type: ignore[arg-type]
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
