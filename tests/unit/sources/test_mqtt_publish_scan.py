"""The network thread's own PUBLISH scan agrees with paho's parser and leaves everything else to paho."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt import _packet
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gulou.bench.loadgen import publish_packet
from gulou.sources.mqtt import BufferedClient

Taken = tuple[str, bytes, int, int, bool]  # topic, payload, packet id, qos, dup


def _client(mqtt5: bool) -> BufferedClient:
    protocol = MQTTProtocolVersion.MQTTv5 if mqtt5 else MQTTProtocolVersion.MQTTv311
    return BufferedClient(CallbackAPIVersion.VERSION2, client_id="scan", protocol=protocol, manual_ack=True)


def _length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _publish5(topic: str, payload: bytes, qos: int, mid: int, expiry: int | None) -> bytes:
    """An MQTT 5 PUBLISH, with a message-expiry property when given one."""
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    if expiry is not None:
        props.MessageExpiryInterval = expiry
    raw = topic.encode()
    packed: bytes = props.pack()  # type: ignore[no-untyped-call]
    body = len(raw).to_bytes(2, "big") + raw + (mid.to_bytes(2, "big") if qos else b"") + packed + payload
    return bytes([0x30 | (qos << 1)]) + _length(len(body)) + body


def _dup(packet: bytes, dup: bool) -> bytes:
    """The packet with its DUP flag set (a broker's resend of an unacknowledged QoS 1 message)."""
    return bytes([packet[0] | 0x08]) + packet[1:] if dup else packet


def _scan(client: BufferedClient, data: bytes) -> list[Taken]:
    taken: list[Taken] = []
    client._rbuf, client._rpos = data, 0
    while client.take_publishes(lambda *item: taken.append(item), limit=3):
        pass
    return taken


def _paho(data: bytes, mqtt5: bool) -> list[Taken]:
    """What paho's own parser makes of whole PUBLISH packets."""
    protocol = MQTTProtocolVersion.MQTTv5 if mqtt5 else MQTTProtocolVersion.MQTTv311
    out: list[Taken] = []
    pos = 0
    while pos < len(data):
        length, mult, i = 0, 1, pos + 1
        while True:
            length += (data[i] & 0x7F) * mult
            mult *= 128
            i += 1
            if not data[i - 1] & 0x80:
                break
        p = _packet.decode_publish(data[pos], data[i:i + length], protocol)
        out.append((p.topic.decode(), bytes(p.payload), p.mid, p.qos, bool(p.dup)))
        pos = i + length
    return out


messages = st.lists(st.tuples(st.text(min_size=1, max_size=40), st.binary(max_size=300), st.integers(0, 1),
                              st.integers(1, 65535), st.one_of(st.none(), st.integers(0, 2**32 - 1)), st.booleans()),
                    min_size=1, max_size=12)


@settings(max_examples=200, deadline=None)
@given(messages, st.booleans())
def test_scan_reads_what_paho_reads(items: list[tuple[str, bytes, int, int, int | None, bool]], mqtt5: bool) -> None:
    if mqtt5:
        data = b"".join(_dup(_publish5(t, p, q, m, e), d and q > 0) for t, p, q, m, e, d in items)
    else:
        data = b"".join(_dup(publish_packet(t, p, q, m), d and q > 0) for t, p, q, m, _, d in items)
    client = _client(mqtt5)
    assert _scan(client, data) == _paho(data, mqtt5)
    assert client.buffered == 0


@settings(max_examples=200, deadline=None)
@given(messages, st.data())
def test_a_packet_cut_off_is_left_whole_for_paho(items: list[tuple[str, bytes, int, int, int | None, bool]],
                                                   data: st.DataObject) -> None:
    packets = [_publish5(t, p, q, m, e) for t, p, q, m, e, _ in items]
    stream = b"".join(packets)
    cut = data.draw(st.integers(0, len(stream) - 1))
    client = _client(True)
    taken = _scan(client, stream[:cut])
    # Exactly the packets that fit entirely are taken; the scan stops at the start of the next one.
    whole, end = 0, 0
    while whole < len(packets) and end + len(packets[whole]) <= cut:
        end += len(packets[whole])
        whole += 1
    assert len(taken) == whole
    assert client._rpos == end


def test_anything_but_a_qos_0_or_1_publish_stops_the_scan() -> None:
    first = publish_packet("gulou/air/a/telemetry", b"{}", 1, 7)
    for other in (b"\xd0\x00",  # PINGRESP
                  b"\x90\x03\x00\x01\x01",  # SUBACK
                  publish_packet("gulou/air/a/telemetry", b"{}", 1, 8)[:1].replace(b"\x32", b"\x34")
                  + publish_packet("gulou/air/a/telemetry", b"{}", 1, 8)[1:],  # QoS 2
                  b"\x32\x02\x00\x00",  # no room for a packet id
                  b"\x32\x05\x00\x00\x00\x01x",  # empty topic
                  b"\x32\x06\x00\x02\xff\xfe\x00\x01",  # topic not UTF-8
                  b"\x32\xff\xff\xff\xff\x01"):  # remaining length longer than four bytes
        client = _client(False)
        taken = _scan(client, first + other)
        assert taken == [("gulou/air/a/telemetry", b"{}", 7, 1, False)], other
        assert client._rpos == len(first)


def test_no_scan_while_paho_is_inside_a_packet() -> None:
    client = _client(False)
    client._in_packet["command"] = 0x32
    client._rbuf, client._rpos = publish_packet("gulou/air/a/telemetry", b"{}", 1, 7), 0
    assert client.take_publishes(lambda *_: None) == 0
    assert client._rpos == 0
