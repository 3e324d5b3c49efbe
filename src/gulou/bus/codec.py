"""Records on the bus: JSON bodies, and message ids derived from the message so redeliveries de-duplicate."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from gulou.bus.base import Delivery, Envelope
from gulou.tsdb.records import DeadLetter, Point, StatusEvent

Record = Point | StatusEvent | DeadLetter


def reading_id(point: Point) -> str:
    """A reading is identified by device, observation time and period: the store's idempotency key too."""
    if point.period != "rtd":  # a station's hourly mean at 09:00 is not its real-time reading of 09:00
        return f"r:{point.device_id}:{point.ts_ms}:{point.period}"
    return f"r:{point.device_id}:{point.ts_ms}"


def status_id(event: StatusEvent) -> str:
    """A status message is identified by device, time and state."""
    return f"s:{event.device_id}:{event.ts_ms}:{int(event.online)}"


def dead_id(letter: DeadLetter) -> str:
    """A rejected message is identified by topic, raw bytes and arrival time.

    A device may well send the same broken payload twice, and without a bus each arrival is counted: so
    the arrival time is part of the id. A collector retrying its own publish reuses the same letter, and the
    stream drops the copy.
    """
    head = f"{letter.topic}\0{letter.received_ms}\0".encode()
    return f"d:{hashlib.blake2b(head + letter.payload, digest_size=16).hexdigest()}"


def _dead_json(letter: DeadLetter) -> dict[str, Any]:
    return {"topic": letter.topic, "payload": base64.b64encode(letter.payload).decode("ascii"),
            "reason": letter.reason, "detail": letter.detail, "received_ms": letter.received_ms,
            "device_id": letter.device_id, "domain": letter.domain, "source": letter.source, "mn": letter.mn}


def _point_json(p: Point) -> dict[str, Any]:
    # A literal rather than dataclasses.asdict: asdict deep-copies and costs most of a publish.
    data = {"device_id": p.device_id, "domain": p.domain, "type": p.type, "street": p.street, "site": p.site,
            "ts_ms": p.ts_ms, "values": p.values, "seq": p.seq, "tags": p.tags}
    if p.source != "mqtt":  # an HJ 212 station's reading: its period, flags, invalid values and back-fill mark
        data.update(period=p.period, flags=p.flags, invalid=p.invalid, backfill=p.backfill, source=p.source)
    return data


def _status_json(s: StatusEvent) -> dict[str, Any]:
    return {"device_id": s.device_id, "domain": s.domain, "street": s.street, "site": s.site, "ts_ms": s.ts_ms,
            "online": s.online, "battery": s.battery, "rssi": s.rssi}


def _dumps(data: dict[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def envelope(record: Record, partition: int | None) -> Envelope:
    """The message to publish for a record; dead letters carry no partition."""
    if isinstance(record, Point):
        return Envelope("reading", partition, reading_id(record), _dumps(_point_json(record)))
    if isinstance(record, StatusEvent):
        return Envelope("status", partition, status_id(record), _dumps(_status_json(record)))
    return Envelope("dead", None, dead_id(record), _dumps(_dead_json(record)))


def decode(delivery: Delivery | Envelope) -> Record:
    """The record a delivery carries; ValueError when the body does not match its kind."""
    try:
        data = json.loads(delivery.body)
        if delivery.kind == "reading":
            return Point(**data)
        if delivery.kind == "status":
            return StatusEvent(**data)
        data["payload"] = base64.b64decode(data["payload"])
        return DeadLetter(**data)
    except (TypeError, KeyError, ValueError) as exc:
        raise ValueError(f"bus message {delivery.msg_id!r} ({delivery.kind}): undecodable body: {exc}") from exc
