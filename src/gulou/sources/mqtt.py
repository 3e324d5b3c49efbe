"""MQTT source: QoS 1 with manual acks, MQTT 5 persistent session, shared subscription, stall probe."""

from __future__ import annotations

import collections
import contextlib
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from gulou.backoff import Backoff
from gulou.devices.contract import STATION_DEADLETTERS, STATUS_FILTER, TELEMETRY_FILTER, TOPIC_ROOT
from gulou.settings import BrokerAddress, Settings
from gulou.sources.base import Delivery, Source, SourceOptions

log = logging.getLogger(__name__)
PUBACK = 0x40
_PUBACK_HEAD = bytes([PUBACK, 0x02])
PROTOCOLS = {"5": True, "3.1.1": False}  # protocol name → MQTT 5
PublishHandler = Callable[[str, bytes, int, int, bool], None]  # (topic, payload, packet id, qos, dup)


class BufferedClient(mqtt.Client):
    """paho reads every packet with three or more tiny ``recv()`` calls and one packet per ``loop()``;
    serve those reads from one large read, so a burst is parsed without a system call per field."""

    _READ_SIZE = 256 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rbuf = b""
        self._rpos = 0

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._rpos >= len(self._rbuf):
            data = super()._sock_recv(self._READ_SIZE)
            if not data:
                return data
            self._rbuf, self._rpos = data, 0
        chunk = self._rbuf[self._rpos:self._rpos + bufsize]
        self._rpos += len(chunk)
        return chunk

    @property
    def buffered(self) -> int:
        """Bytes read from the socket and not yet parsed."""
        return len(self._rbuf) - self._rpos

    def take_publishes(self, handle: PublishHandler, limit: int = 1024) -> int:
        """Hand the whole QoS 0/1 PUBLISH packets at the front of the read buffer to ``handle``; return how many.

        paho builds a packet dict, a message object and an MQTT 5 properties object for every PUBLISH, most of
        the network thread's time at high rates. The collector needs only topic, payload and packet id, read
        here straight from the buffer. Anything else (another packet type, QoS 2, a packet not fully read yet,
        a malformed one) stops the scan and is left to paho, and the scan runs only between two of paho's
        packets, so paho's own parsing state is never skipped over.
        """
        if self._in_packet["command"] != 0:
            return 0
        buf, pos, end = self._rbuf, self._rpos, len(self._rbuf)
        mqtt5 = self._protocol == MQTTProtocolVersion.MQTTv5
        taken = 0
        while taken < limit and pos < end:
            head = buf[pos]
            qos = (head >> 1) & 3
            if head >> 4 != 3 or qos > 1:
                break
            length, body = _varint(buf, pos + 1, end)
            if length < 0 or body + length > end or length < 2:
                break
            stop = body + length
            topic_end = body + 2 + ((buf[body] << 8) | buf[body + 1])
            mid, start = 0, topic_end
            if qos:
                if topic_end + 2 > stop:
                    break
                mid, start = (buf[topic_end] << 8) | buf[topic_end + 1], topic_end + 2
            if mqtt5:
                props, after = _varint(buf, start, stop)
                if props < 0:
                    break
                start = after + props
            if topic_end == body + 2 or start > stop:
                break  # empty topic (an alias we never allow) or lengths that do not add up
            try:
                topic = buf[body + 2:topic_end].decode()
            except UnicodeDecodeError:
                break
            handle(topic, buf[start:stop], mid, qos, bool(head & 0x08))
            pos = stop
            taken += 1
        if taken:
            self._rpos = pos
            with self._msgtime_mutex:  # what paho's keepalive check reads
                self._last_bytes_received = time.monotonic()
        return taken

    def close_after(self, disconnect: bytes, deadline: float) -> None:
        """Send ``disconnect``, half-close, and read until the broker closes; then close the socket.

        paho closes the socket as soon as its DISCONNECT is written. The broker keeps sending PUBLISH packets
        until it reads that DISCONNECT (each PUBACK frees a slot it refills), so the socket is closed with
        unread data, which makes the kernel send a reset instead of a FIN; a broker that has not read our last
        PUBACKs yet then discards them with the connection, and messages already stored come back on restart.
        Reading to the end first lets the PUBACKs and the DISCONNECT reach the broker's session.
        """
        sock = self.socket()
        if not isinstance(sock, socket.socket):  # no connection (or a websocket: paho's own close is all we have)
            self._sock_close()
            return
        try:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            sock.sendall(disconnect)
            sock.shutdown(socket.SHUT_WR)
            while time.monotonic() < deadline:
                sock.settimeout(max(0.05, deadline - time.monotonic()))
                if not sock.recv(65536):
                    break  # the broker read the DISCONNECT and closed its side
        except (OSError, ValueError):
            pass  # already gone: nothing more can reach the broker anyway
        finally:
            self._sock_close()

    def reconnect(self) -> MQTTErrorCode:
        """Drop bytes of the old connection before reconnecting."""
        self._rbuf, self._rpos = b"", 0
        return super().reconnect()


def _disconnect_packet(props: Properties | None) -> bytes:
    """An MQTT DISCONNECT: normal (2 bytes), or reason code 0 with ``props`` (MQTT 5)."""
    if props is None:
        return bytes([0xE0, 0x00])
    body = b"\x00" + bytes(props.pack())  # type: ignore[no-untyped-call]
    out = bytearray([0xE0])
    n = len(body)
    while True:  # the remaining length as a variable byte integer
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            break
    return bytes(out) + body


def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """An MQTT variable byte integer at ``pos``: (value, position after it), or (-1, pos) if cut off or too long."""
    value, shift, i = 0, 0, pos
    while i < end and shift <= 21:
        byte = buf[i]
        value |= (byte & 0x7F) << shift
        i += 1
        if not byte & 0x80:
            return value, i
        shift += 7
    return -1, pos


@dataclass(frozen=True)
class LinkConfig:
    """How the collector connects and subscribes."""

    client_id: str
    topics: tuple[str, ...]
    share_group: str | None = "gulou"
    mqtt5: bool = True
    # Upper bound on unacknowledged QoS 1 messages the broker may push to us (MQTT 5 Receive Maximum):
    # once reached the broker holds further messages, so back-pressure lands there, not in our memory.
    receive_maximum: int = 2000
    session_expiry_s: int = 7 * 24 * 3600
    keepalive_s: int = 30
    # A broker restart is the common outage and lasts about a second: retry after 0.05-0.1 s, doubling, but no
    # wait over fast_cap_s until the outage is fast_window_s old; only a longer outage backs off to the cap.
    backoff_min_s: float = 0.1
    backoff_max_s: float = 30.0
    fast_cap_s: float = 1.0
    fast_window_s: float = 10.0
    # A probe message goes around through the broker every probe_interval_s; no echo within stall_after_s
    # while connected means the subscription is stalled (connected but deaf), and we reconnect.
    probe_interval_s: float = 5.0
    stall_after_s: float = 20.0
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    # Payloads over this are handed on cut to their first keep_bytes, with their size (SourceOptions).
    max_payload_bytes: int | None = None
    keep_bytes: int = 4096
    # Drain a departing collector's session: subscribe to nothing (unsubscribe its filters), take only what the
    # broker queued for it, and end the session (expiry 0) when disconnecting, unless a delivery went unstored.
    drain: bool = False


def default_link(client_id: str, share_group: str | None, mqtt5: bool = True, **extra: Any) -> LinkConfig:
    """Link settings for the contract's telemetry and status topics and the HJ 212 gateway's dead letters."""
    return LinkConfig(client_id=client_id, topics=(TELEMETRY_FILTER, STATUS_FILTER, STATION_DEADLETTERS),
                      share_group=share_group, mqtt5=mqtt5, **extra)


def retry_wait(backoff: Backoff, outage_s: float, config: LinkConfig) -> float:
    """The next reconnect wait: jittered backoff, held under ``fast_cap_s`` while the outage is still short."""
    wait = backoff.next()
    return min(wait, config.fast_cap_s) if outage_s < config.fast_window_s else wait


class MqttSource(Source):
    """Keeps one paho client connected on its own thread and hands deliveries to the collector."""

    name = "mqtt"

    def __init__(self, broker: BrokerAddress, config: LinkConfig) -> None:
        self.broker = broker
        self.config = config
        self.id = config.client_id
        self.max_in_flight = config.receive_maximum
        self._deliver: Callable[[Delivery], None] | None = None
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._thread: threading.Thread | None = None
        self._reconnects = 0
        self._stalled = False
        self._last_message_at: float | None = None
        self._last_probe_echo = time.monotonic()
        self._probe_topic = f"{TOPIC_ROOT}/_probe/{config.client_id}"
        self._acks: collections.deque[list[tuple[int, int]]] = collections.deque()
        self._paused = False
        self._unstored = 0  # deliveries dropped while paused: a drain keeps the session for them
        self._keep_session = False
        self.session_ended = False  # a drain ended the broker session on its way out
        self._client = self._make_client()

    @classmethod
    def from_settings(cls, settings: Settings, options: SourceOptions) -> MqttSource | None:
        """From ``settings.mqtt`` (broker URL, credentials, CA file); None when no broker is configured."""
        address = settings.mqtt.address()
        if address is None:
            return None
        protocol = options.protocol or "5"
        if protocol not in PROTOCOLS:
            raise ValueError(f"MQTT protocol {protocol!r}: use one of {', '.join(PROTOCOLS)}")
        section = settings.mqtt
        config = default_link(options.client_id, options.share_group, mqtt5=PROTOCOLS[protocol],
                              receive_maximum=options.max_in_flight, username=section.username,
                              password=section.secret(), ca_file=str(section.ca_file) if section.ca_file else None,
                              max_payload_bytes=options.max_payload_bytes, keep_bytes=options.keep_bytes,
                              drain=options.drain)
        return cls(address, config)

    # -- the Source boundary -----------------------------------------------------------------------------------
    def start(self, deliver: Callable[[Delivery], None]) -> None:
        """Start the network thread (connects, reconnects with jittered backoff)."""
        self._deliver = deliver
        self._thread = threading.Thread(target=self._run, name=f"mqtt-{self.config.client_id}", daemon=True)
        self._thread.start()

    def wait_connected(self, timeout: float) -> bool:
        """Block until subscribed (True) or the timeout passes (False)."""
        return self._connected.wait(timeout)

    @property
    def connected(self) -> bool:
        """Whether the link is connected and subscribed."""
        return self._connected.is_set()

    @property
    def stalled(self) -> bool:
        """Whether the last connection stopped delivering (no probe echo) while still open."""
        return self._stalled

    @property
    def reconnects(self) -> int:
        """Reconnections since start."""
        return self._reconnects

    @property
    def last_message_at(self) -> float | None:
        """``time.monotonic()`` of the last device message."""
        return self._last_message_at

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Acknowledge messages to the broker (call only once they are durably stored).

        paho is driven by one thread only (``loop()`` here), so acks are handed to the network thread,
        which sends them on its next turn.
        """
        tokens = [cast(tuple[int, int], d.token) for d in deliveries]
        self._acks.append([(mid, qos) for mid, qos in tokens if qos > 0])

    def redelivery_key(self, delivery: Delivery) -> str | None:
        """Client id and packet id: a broker resends an unacknowledged QoS 1 message with its original packet id."""
        mid, qos = cast(tuple[int, int], delivery.token)
        return f"{self.id}:{mid}" if qos else None

    def pause(self) -> None:
        """Stop handing deliveries on; the broker redelivers those unacknowledged ones after reconnecting."""
        self._paused = True

    def keep_session(self) -> None:
        """Leave the session at the broker when stopping, even in a drain (an interrupted drain)."""
        self._keep_session = True

    def stop(self) -> None:
        """Send the acks still queued, then disconnect; the persistent session keeps queueing at the broker."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)

    # -- internals ------------------------------------------------------------------------------------------
    def _make_client(self) -> BufferedClient:
        c = self.config
        client = BufferedClient(
            CallbackAPIVersion.VERSION2, client_id=c.client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if c.mqtt5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if c.mqtt5 else False, reconnect_on_failure=False, manual_ack=True,
        )
        if c.username:
            client.username_pw_set(c.username, c.password)
        if self.broker.tls:
            client.tls_set(ca_certs=c.ca_file, cert_reqs=ssl.CERT_REQUIRED)
        client.max_inflight_messages_set(c.receive_maximum)
        client.max_queued_messages_set(0)
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_message = self._handle_message
        return client

    def _filters(self) -> list[str]:
        c = self.config
        return [f"$share/{c.share_group}/{t}" if c.share_group else t for t in c.topics]

    def _handle_connect(self, client: mqtt.Client, _u: object, _f: object, rc: ReasonCode,
                        _p: Properties | None = None) -> None:
        if rc.is_failure:
            log.error("broker refused the connection: %s", rc)
            return
        if self.config.drain:
            # Queued messages stay in the session after an unsubscribe; nothing new is routed to it.
            plain = list(self.config.topics)
            shared = [f"$share/{self.config.share_group}/{t}" for t in plain] if self.config.share_group else []
            client.unsubscribe(plain + shared)
        else:
            client.subscribe([(f, 1) for f in self._filters()] + [(self._probe_topic, 0)])
        self._last_probe_echo = time.monotonic()
        self._stalled = False
        self._connected.set()
        log.info("connected to %s:%s as %s, %s %s", self.broker.host, self.broker.port, self.config.client_id,
                 "draining; unsubscribed from" if self.config.drain else "subscribed to", ", ".join(self._filters()))

    def _handle_disconnect(self, _c: mqtt.Client, _u: object, _f: object, rc: ReasonCode,
                           _p: Properties | None = None) -> None:
        self._connected.clear()
        if not self._stop.is_set():
            log.warning("disconnected from broker: %s", rc)

    def _handle_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        self._publish(msg.topic, bytes(msg.payload), msg.mid, msg.qos, bool(msg.dup))

    def _publish(self, topic: str, payload: bytes, mid: int, qos: int, dup: bool = False) -> None:
        """One PUBLISH, whether paho parsed it or ``take_publishes`` did."""
        now = time.monotonic()
        # Any delivery proves the subscription alive; under a backlog the probe may queue behind data.
        self._last_probe_echo = now
        if topic == self._probe_topic:
            if qos > 0:
                self._client.ack(mid, qos)
            return
        if self._paused or self._deliver is None:
            self._unstored += 1
            return
        self._last_message_at = now
        limit = self.config.max_payload_bytes
        if limit is not None and len(payload) > limit:
            self._deliver(Delivery(topic, payload[:self.config.keep_bytes], time.time(), (mid, qos), len(payload),
                                   dup))
            return
        self._deliver(Delivery(topic, payload, time.time(), (mid, qos), -1, dup))

    def _close(self) -> None:
        """Send queued acks and a DISCONNECT, and let the loop write them out."""
        self._send_acks()
        props = None
        if self.config.drain and self.config.mqtt5:
            if self._keep_session:
                log.warning("drain interrupted: keeping session %s", self.config.client_id)
            elif self._unstored:
                log.warning("drain: %s deliveries arrived while stopping and were not stored; keeping session %s",
                            self._unstored, self.config.client_id)
            else:
                props = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
                props.SessionExpiryInterval = 0  # the broker drops the session once we are gone
                self.session_ended = True
        with contextlib.suppress(Exception):
            deadline = time.monotonic() + 5
            while self._client.want_write() and time.monotonic() < deadline:
                self._client.loop(timeout=0.05)
            self._client.close_after(_disconnect_packet(props), deadline)

    def _send_acks(self) -> None:
        # Acks queued before a reconnect still name valid packet ids: the broker's session kept those
        # messages in flight and resends them; a PUBACK for them settles either copy.
        if not self._acks:
            return
        pubacks = bytearray()
        while self._acks:
            for mid, qos in self._acks.popleft():
                if qos == 1:
                    pubacks += _PUBACK_HEAD + mid.to_bytes(2, "big")
                else:
                    self._client.ack(mid, qos)
        if pubacks:
            # One write for the whole batch: paho's ack() costs a packet object and a send() per message,
            # a third of the collector's CPU at high rates. A 2-byte PUBACK (no reason code) means success in
            # both MQTT 3.1.1 and 5; paho's own queue keeps packet boundaries and ordering intact.
            self._client._packet_queue(PUBACK, bytes(pubacks), 0, 0)

    def _connect(self) -> None:
        c = self.config
        if c.mqtt5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = c.session_expiry_s
            props.ReceiveMaximum = c.receive_maximum
            self._client.connect(self.broker.host, self.broker.port, c.keepalive_s, clean_start=False,
                                 properties=props)
        else:
            self._client.connect(self.broker.host, self.broker.port, c.keepalive_s)

    def _run(self) -> None:
        # Jittered: many collectors restarting together must not reconnect in lockstep.
        backoff = Backoff(self.config.backoff_min_s, self.config.backoff_max_s)
        first = True
        outage_since: float | None = None
        while not self._stop.is_set():
            try:
                if first:
                    self._connect()
                else:
                    log.warning("reconnecting to %s:%s", self.broker.host, self.broker.port)
                    self._client.reconnect()
                    self._reconnects += 1
                first = False
                backoff.reset()
                outage_since = None
                self._serve()
                self._close()
            except (OSError, ConnectionError, mqtt.WebsocketConnectionError) as exc:
                self._connected.clear()
                if self._stop.is_set():
                    break
                now = time.monotonic()
                outage_since = now if outage_since is None else outage_since
                wait = retry_wait(backoff, now - outage_since, self.config)
                log.warning("broker connection lost (%s); retrying in %.1f s", exc, wait)
                self._stop.wait(wait)

    def _serve(self) -> None:
        """Run the connected loop until stopped; raises ``ConnectionError`` on a lost or stalled connection."""
        next_probe = 0.0
        while not self._stop.is_set():
            rc = self._client.loop(timeout=0.02)
            # loop() parses one packet; parse the rest of what the last read brought in: PUBLISH packets
            # straight from the buffer, anything else through paho.
            drained = 0
            while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and self._client.buffered and drained < 4096:
                taken = self._client.take_publishes(self._publish)
                if not taken:
                    rc = self._client.loop_read()
                drained += taken or 1
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                raise ConnectionError(mqtt.error_string(rc))
            self._send_acks()
            now = time.monotonic()
            if self.config.drain:
                continue  # no probe topic subscribed while draining
            if self._connected.is_set() and now >= next_probe:
                self._client.publish(self._probe_topic, b"probe", qos=0)
                next_probe = now + self.config.probe_interval_s
            if self._connected.is_set() and now - self._last_probe_echo > self.config.stall_after_s:
                self._stalled = True
                log.error("subscription stalled: no probe echo for %.0f s while connected; reconnecting",
                          now - self._last_probe_echo)
                self._client.disconnect()
                raise ConnectionError("stalled subscription")
