"""The MQTT source's last words: DISCONNECT and an orderly close, never a reset that loses the last PUBACKs."""

from __future__ import annotations

import socket
import threading
import time

from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gulou.sources.mqtt import BufferedClient, _disconnect_packet


def test_disconnect_packets() -> None:
    assert _disconnect_packet(None) == b"\xe0\x00"
    props = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 0
    # reason code 0, properties length 5, Session Expiry Interval (0x11) = 0
    assert _disconnect_packet(props) == b"\xe0\x07\x00\x05\x11\x00\x00\x00\x00"


def test_close_with_unread_data_ends_in_order_not_with_a_reset() -> None:
    """The broker still has PUBLISH packets on their way when we leave: it must read our DISCONNECT, then EOF.

    Closing a socket with unread bytes makes the kernel send a reset; the broker then discards what it had
    not read yet (the PUBACKs just sent) and reads ECONNRESET instead of the end.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    client = BufferedClient(CallbackAPIVersion.VERSION2, client_id="t", protocol=MQTTProtocolVersion.MQTTv5)
    sock = socket.create_connection(("127.0.0.1", port))
    broker, _ = listener.accept()
    broker.sendall(b"\x30" * 512 * 1024)  # deliveries the client will never parse, sitting in its buffer
    client._sock = sock  # the connection paho would have opened
    seen: list[bytes] = []
    ending: list[str] = []

    def broker_side() -> None:
        broker.settimeout(10)
        data = b""
        try:
            while True:
                chunk = broker.recv(4096)
                if not chunk:
                    ending.append("eof")
                    break
                data += chunk
        except ConnectionResetError:
            ending.append("reset")
        seen.append(data)
        broker.close()

    reader = threading.Thread(target=broker_side)
    reader.start()
    client.close_after(b"\xe0\x00", time.monotonic() + 10)
    reader.join(15)
    listener.close()
    assert ending == ["eof"] and seen == [b"\xe0\x00"]
    assert client.socket() is None
