"""The collector's side of the gateway's dead letters: an envelope from MQTT back into a stored dead letter.

The gateway publishes each refused packet on ``gulou/deadletters/hj212`` (``downstream.DeadLetter.envelope``).
The collector stores the packet's bytes exactly as the station sent them, with the gateway's reason, its
detail (and the station's address), the MN and, when the registry knows the MN, the device it feeds. An
envelope that cannot be read is kept whole as a dead letter of its own (``bad_envelope``), never dropped.
"""

from __future__ import annotations

import base64
import binascii

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from gulou.devices.contract import STATION_DEADLETTERS
from gulou.devices.registry import Registry
from gulou.tsdb.records import DeadLetter

SOURCE = "hj212"
BAD_ENVELOPE = "bad_envelope"


class Envelope(BaseModel):
    """What the gateway publishes for one refused packet."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(pattern=f"^{SOURCE}$")
    received: AwareDatetime
    peer: str | None = None
    mn: str | None = None
    reason: str = Field(min_length=1, max_length=64)
    detail: str
    raw_b64: str
    raw_text: str | None = None


def station_letter(payload: bytes, received_ms: int, registry: Registry) -> DeadLetter:
    """The dead letter an envelope stands for (timed when the gateway received the packet)."""
    try:
        envelope = Envelope.model_validate_json(payload)
        raw = base64.b64decode(envelope.raw_b64, validate=True)
    except (ValidationError, binascii.Error, ValueError) as exc:
        detail = f"HJ 212 dead-letter envelope unreadable: {str(exc).splitlines()[0][:200]}"
        return DeadLetter(STATION_DEADLETTERS, payload, BAD_ENVELOPE, detail, received_ms, source=SOURCE)
    device = registry.station(envelope.mn) if envelope.mn else None
    detail = envelope.detail + (f" (from {envelope.peer})" if envelope.peer else "")
    return DeadLetter(STATION_DEADLETTERS, raw, envelope.reason, detail, int(envelope.received.timestamp() * 1000),
                      device_id=device.id if device else None, domain=device.domain if device else None,
                      source=SOURCE, mn=envelope.mn)
