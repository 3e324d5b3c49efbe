"""The device contract: topics, payload decoding and the reasons a message is rejected."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from gulou.devices.base import DEFAULT_PERIOD, PayloadBase, Period
from gulou.devices.catalog import CATALOG, domains
from gulou.devices.fastpath import fast_payload
from gulou.devices.registry import Device, Registry

TOPIC_ROOT = "gulou"
TELEMETRY_FILTER = f"{TOPIC_ROOT}/+/+/telemetry"
STATUS_FILTER = f"{TOPIC_ROOT}/+/+/status"
# Packets the HJ 212 gateway refused, one JSON envelope each (raw bytes, reason, MN): the collector files them
# as dead letters of source ``hj212``.
STATION_DEADLETTERS = f"{TOPIC_ROOT}/deadletters/hj212"
# Epoch-millisecond timestamps before this are firmware clocks that never synced (1970 etc.).
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)

# Rejection reasons, most fundamental first: when a payload has several problems the first listed
# one names it, and the detail text lists them all.
REASONS: dict[str, str] = {
    # Checked before anything else: a huge payload is not even parsed.
    "payload_too_large": "payload larger than GULOU_LIMITS__MAX_PAYLOAD_BYTES (its first bytes and size are kept)",
    "bad_topic": "topic is not gulou/<domain>/<device_id>/telemetry|status",
    "unknown_domain": f"domain in the topic is not one of {', '.join(domains())}",
    "unknown_device": "device id is not in the registry",
    "domain_mismatch": "device is registered under another domain",
    "malformed_json": "payload is not valid UTF-8 JSON",
    "not_object": "payload is JSON but not an object",
    "missing_ts": "payload has no ts",
    "bad_timestamp": "ts is not RFC 3339 with an offset nor integer epoch milliseconds after 2000",
    "future_timestamp": "ts lies further in the future than the allowed clock skew",
    "unknown_field": "payload has a field the device type does not define",
    "wrong_type": "a field has the wrong JSON type",
    "non_finite": "a number is NaN or infinite",
    "out_of_range": "a value lies outside the metric's physical range",
    "inconsistent": "values contradict each other (e.g. correct > inspected)",
    "no_metrics": "payload carries no metric",
}
# Not a contract violation: the time-series store refused a validated batch as invalid (HTTP 400/413/422).
SINK_REJECTED = "sink_rejected"
Reason = Literal[
    "payload_too_large", "bad_topic", "unknown_domain", "unknown_device", "domain_mismatch", "malformed_json",
    "not_object",
    "missing_ts", "bad_timestamp", "future_timestamp", "unknown_field", "wrong_type", "non_finite",
    "out_of_range", "inconsistent", "no_metrics",
]
Kind = Literal["telemetry", "status"]


# Slots on the records made per message (topic, reading): smaller, and quicker to build.
@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed contract topic."""

    domain: str
    device_id: str
    kind: Kind


@dataclass(frozen=True, slots=True)
class Reading:
    """A validated telemetry message.

    ``values`` holds only what counts as a measurement: a value whose data flag the device does not count
    as valid (calibration, maintenance, fault…; ``Device.valid_flags``) is kept apart in ``invalid``, so
    rules, averages and validity counts never see it, while the store keeps it with its flag.
    """

    device: Device
    ts: datetime  # the instant, or the start of the period
    seq: int | None
    values: dict[str, float | int | bool]
    period: Period = DEFAULT_PERIOD
    flags: dict[str, str] = field(default_factory=dict)
    invalid: dict[str, float | int | bool] = field(default_factory=dict)
    backfill: bool = False
    # "hj212" when the payload carried the station fields (the HJ 212 gateway always sends ``period``),
    # else "mqtt": where the reading entered the pipeline, for the accounting by source.
    source: str = "mqtt"


@dataclass(frozen=True)
class StatusUpdate:
    """A validated online/offline status message."""

    device: Device
    ts: datetime
    online: bool
    battery: float | None
    rssi: float | None


@dataclass(frozen=True)
class Rejection:
    """Why a message was refused; the ingest stores it in the dead-letter store with the raw payload."""

    reason: Reason
    detail: str
    device_id: str | None = None
    domain: str | None = None


class StatusPayload(BaseModel):
    """Status payload: retained, also the device's MQTT last will."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)

    ts: AwareDatetime | int
    state: Literal["online", "offline"]
    battery: float | None = Field(default=None, ge=0, le=100)
    rssi: float | None = Field(default=None, ge=-150, le=0)


def telemetry_topic(domain: str, device_id: str) -> str:
    """Topic a device publishes readings on."""
    return f"{TOPIC_ROOT}/{domain}/{device_id}/telemetry"


def status_topic(domain: str, device_id: str) -> str:
    """Topic a device publishes its retained online/offline status on."""
    return f"{TOPIC_ROOT}/{domain}/{device_id}/status"


def parse_topic(topic: str) -> Topic | Rejection:
    """Split a contract topic, or say why it is not one."""
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != TOPIC_ROOT or parts[3] not in ("telemetry", "status") or not parts[2]:
        return Rejection("bad_topic", f"{topic!r}: {REASONS['bad_topic']}")
    if parts[1] not in domains():
        return Rejection("unknown_domain", f"domain {parts[1]!r} is not one of {', '.join(domains())}",
                         device_id=parts[2])
    kind: Kind = "telemetry" if parts[3] == "telemetry" else "status"
    return Topic(domain=parts[1], device_id=parts[2], kind=kind)


class Decoder:
    """Turns (topic, payload) into a Reading, StatusUpdate or Rejection; never raises on bad input."""

    def __init__(self, registry: Registry, max_future: timedelta = timedelta(minutes=5)) -> None:
        self.registry = registry
        self.max_future = max_future

    def decode(
        self, topic: str, payload: bytes, now: datetime | None = None
    ) -> Reading | StatusUpdate | Rejection:
        """Validate one message against the topic scheme, the registry and the device type."""
        parsed = parse_topic(topic)
        if isinstance(parsed, Rejection):
            return parsed
        device = self.registry.get(parsed.device_id)
        if device is None:
            return Rejection("unknown_device", f"device {parsed.device_id!r} is not registered",
                             device_id=parsed.device_id, domain=parsed.domain)
        if device.domain != parsed.domain:
            return Rejection("domain_mismatch",
                             f"device {device.id!r} is registered as {device.domain}, topic says {parsed.domain}",
                             device_id=device.id, domain=parsed.domain)
        if parsed.kind == "telemetry" and (fast := fast_payload(CATALOG[device.type])) is not None:
            found = fast.read(payload)
            if found is not None:
                ts = _to_datetime(found[0])
                # A timestamp out of bounds goes the full way below, which words the rejection.
                if ts >= EARLIEST and ts - (now or datetime.now(UTC)) <= self.max_future:
                    return Reading(device=device, ts=ts, seq=found[1], values=found[2])
        model: type[BaseModel] = (
            CATALOG[device.type].payload_model if parsed.kind == "telemetry" else StatusPayload
        )
        try:
            obj = model.model_validate_json(payload)
        except ValidationError as exc:
            reason, detail = explain(exc.errors())
            return Rejection(reason, detail, device_id=device.id, domain=device.domain)
        except UnicodeDecodeError as exc:  # pragma: no cover - pydantic reports invalid UTF-8 as json_invalid
            return Rejection("malformed_json", str(exc), device_id=device.id, domain=device.domain)
        ts = _to_datetime(obj.ts)  # type: ignore[attr-defined]
        current = now or datetime.now(UTC)
        if ts < EARLIEST:
            return Rejection("bad_timestamp", f"ts {ts.isoformat()} is before {EARLIEST.date()}",
                             device_id=device.id, domain=device.domain)
        if ts - current > self.max_future:
            return Rejection("future_timestamp",
                             f"ts {ts.isoformat()} is {(ts - current).total_seconds():.0f} s ahead of the "
                             f"receive time (allowed {self.max_future.total_seconds():.0f} s)",
                             device_id=device.id, domain=device.domain)
        if isinstance(obj, StatusPayload):
            return StatusUpdate(device=device, ts=ts, online=obj.state == "online",
                                battery=obj.battery, rssi=obj.rssi)
        assert isinstance(obj, PayloadBase)
        values = obj.metrics()
        if obj.period is None and obj.backfill is None and obj.__dict__.get("flags") is None:
            return Reading(device=device, ts=ts, seq=obj.seq, values=values)
        flags = obj.data_flags()
        valid = device.valid_flags
        invalid = {m: v for m, v in values.items() if m in flags and flags[m] not in valid}
        if invalid:
            values = {m: v for m, v in values.items() if m not in invalid}
        return Reading(device=device, ts=ts, seq=obj.seq, values=values, period=obj.period or DEFAULT_PERIOD,
                       flags=flags, invalid=invalid, backfill=bool(obj.backfill), source="hj212")


def _to_datetime(ts: datetime | int) -> datetime:
    if isinstance(ts, datetime):
        return ts.astimezone(UTC)
    try:
        return datetime.fromtimestamp(ts / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return datetime(1, 1, 1, tzinfo=UTC)  # rejected as bad_timestamp by the caller


def _classify(err: ErrorDetails) -> str:
    kind, loc = err["type"], err["loc"]
    field = str(loc[0]) if loc else ""
    if kind == "json_invalid" or kind == "json_type":
        return "malformed_json"
    if kind == "model_type" or kind == "model_attributes_type" or kind == "dict_type":
        return "wrong_type" if loc else "not_object"  # a nested object (flags) of the wrong JSON type
    if kind == "extra_forbidden":
        return "unknown_field"
    if field == "ts":
        return "missing_ts" if kind == "missing" else "bad_timestamp"
    value = err.get("input")
    if kind == "finite_number" or (isinstance(value, float) and not math.isfinite(value)):
        return "non_finite"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return "out_of_range"
    if kind == "value_error" and not loc:
        return "no_metrics" if "no metric" in err["msg"] else "inconsistent"
    if kind == "literal_error" or kind == "missing":
        return "wrong_type"
    return "wrong_type"


def explain(errors: list[ErrorDetails]) -> tuple[Reason, str]:
    """Pick the most fundamental reason among pydantic errors and describe them all."""
    order = list(REASONS)
    reasons = [_classify(e) for e in errors]
    reason = min(reasons, key=order.index)
    parts = []
    for err in errors:
        where = ".".join(str(p) for p in err["loc"] if not isinstance(p, int) or len(err["loc"]) == 1)
        value = err.get("input")
        shown = "" if isinstance(value, dict | list) or value is None else f" (got {_short(value)})"
        parts.append(f"{where or 'payload'}: {err['msg']}{shown}")
    return reason, "; ".join(parts)  # type: ignore[return-value]


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, bytes) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
