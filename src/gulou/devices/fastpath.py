"""The decoder's fast path: telemetry its pydantic model would accept as it is, recognised without building it.

Most messages are well-formed; for them, orjson and a per-type table of metric kinds and ranges give the same
result as the model several times faster. The fast path never rejects anything: whatever it is not sure the
model would accept unchanged (any doubt about a key, a type, a range, a timestamp's format, a cross-field rule)
goes through the model, which gives the rejection its reason and detail, so both stay defined in one place.
"""

from __future__ import annotations

import functools
import math
import re
from datetime import datetime
from typing import Any

import orjson

from gulou.devices.base import DeviceType, MetricKind, PayloadBase

# RFC 3339 with an offset, at most microseconds: what pydantic's AwareDatetime reads to the same instant.
# Other spellings it may accept (a space for T, more digits) are left to it.
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT[01]\d:[0-5]\d:[0-5]\d(?:\.\d{1,6})?(?:Z|[+-][01]\d:[0-5]\d)\Z")
_SEQ_MAX = 2**63 - 1
Found = tuple[datetime | int, int | None, dict[str, float | int | bool]]


class FastPayload:
    """One device type's metric table: ``read`` returns (ts, seq, values) exactly as the model would, or None."""

    def __init__(self, dtype: DeviceType) -> None:
        # Per metric in the model's field order: name, kind and the bounds payload_model gives pydantic (none
        # for bool metrics; a missing bound is infinite, which compares the same as no check).
        self.metrics: tuple[tuple[str, MetricKind, float, float], ...] = tuple(
            (m.name, m.kind, -math.inf if m.minimum is None or m.kind == "bool" else m.minimum,
             math.inf if m.maximum is None or m.kind == "bool" else m.maximum)
            for m in dtype.metrics
        )
        self.known = frozenset(m.name for m in dtype.metrics) | {"ts", "seq"}

    def read(self, payload: bytes) -> Found | None:
        """The payload's timestamp (as sent), seq and metric values in the model's field order; None if unsure."""
        try:
            obj = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return None
        # Any other key (a field the type does not define, an optional station field): the model decides.
        if type(obj) is not dict or not obj.keys() <= self.known:
            return None
        ts: Any = obj.get("ts")
        if type(ts) is str and _RFC3339.match(ts):
            try:
                ts = datetime.fromisoformat(ts)
            except ValueError:
                return None
        elif type(ts) is not int:
            return None
        seq = obj.get("seq")
        if seq is not None and (type(seq) is not int or not 0 <= seq <= _SEQ_MAX):
            return None
        values: dict[str, float | int | bool] = {}
        for name, kind, low, high in self.metrics:
            value = obj.get(name)
            if value is None:
                continue
            t = type(value)
            if kind == "float":
                if t is int:
                    value = float(value)
                elif t is not float:
                    return None
            elif t is not (int if kind == "int" else bool):
                return None
            if not low <= value <= high:
                return None
            values[name] = value
        return (ts, seq, values) if values else None


@functools.cache
def fast_payload(dtype: DeviceType) -> FastPayload | None:
    """The fast path for a type whose payload model is the catalog's plain one; None when it has more rules.

    A type with a cross-field rule (its own ``payload_base`` validators) or its own ``payload_model`` always
    goes through the model, so every rule it declares keeps running.
    """
    if type(dtype).payload_model is not DeviceType.payload_model or dtype.payload_base() is not PayloadBase:
        return None
    return FastPayload(dtype)
