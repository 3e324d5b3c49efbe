"""Line protocol for the storage schema: one measurement per domain, registry tags, metrics as fields."""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import cache, lru_cache
from math import isfinite

from gulou.devices.base import DEFAULT_PERIOD
from gulou.devices.catalog import CATALOG
from gulou.tsdb.records import Batch, Point, StatusEvent

FieldValue = float | int | bool | str

# Escaping follows the line-protocol reference (and the official client): measurement names escape
# commas and spaces; tag keys, tag values and field keys also escape '='; string field values escape
# double quotes and backslashes. Control characters would end the line, so they are escaped too.
_ESCAPE_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n", "\r": r"\r", "\t": r"\t"})
_ESCAPE_KEY = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\r": r"\r", "\t": r"\t"})
_ESCAPE_STRING = str.maketrans({'"': r"\"", "\\": r"\\", "\n": r"\n"})


def escape_measurement(name: str) -> str:
    """Escape a measurement name for line protocol."""
    return name.translate(_ESCAPE_MEASUREMENT)


def escape_key(text: str) -> str:
    """Escape a tag key, tag value or field key for line protocol."""
    return text.translate(_ESCAPE_KEY)


def format_field(value: FieldValue) -> str:
    """One field value in line-protocol syntax: ``1.5``, ``3i``, ``true``, ``"text"``."""
    if isinstance(value, bool):  # bool first: it is a subclass of int
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"line protocol has no representation for {value!r}")
        # repr keeps full precision and always marks a float ("3.0", "1e-05"), never an integer.
        return repr(value)
    if isinstance(value, str):
        return '"' + value.translate(_ESCAPE_STRING) + '"'
    raise TypeError(f"unsupported field value type {type(value).__name__}")


def series_key(measurement: str, tags: Mapping[str, str | None]) -> str:
    """Measurement and tags as a line starts: ``air,device=aq-1,street=…``; empty tags are left out."""
    parts = [escape_measurement(measurement)]
    # Sorted tag keys are what InfluxDB stores anyway; sending them sorted saves it the work.
    parts.extend(f",{escape_key(k)}={escape_key(v)}" for k, v in sorted(tags.items()) if v)
    return "".join(parts)


def encode_line(measurement: str, tags: Mapping[str, str | None], fields: Mapping[str, FieldValue | None],
                ts_ms: int) -> str:
    """One line of line protocol with millisecond timestamp; empty tags and ``None`` fields are left out."""
    encoded = ",".join(f"{escape_key(k)}={format_field(v)}" for k, v in fields.items() if v is not None)
    if not encoded:
        raise ValueError(f"{measurement} line at {ts_ms} has no fields")
    return f"{series_key(measurement, tags)} {encoded} {int(ts_ms)}"


@cache
def _metric_kind(device_type: str, metric: str) -> str | None:
    kind = CATALOG.get(device_type)
    if kind is None:
        return None
    try:
        return kind.metric(metric).kind
    except KeyError:
        return None


def _typed(device_type: str, name: str, value: float | int | bool) -> FieldValue:
    """Coerce a value to its catalog kind: JSON ``7`` for a float metric must still be written ``7.0``."""
    return _coerce(_metric_kind(device_type, name), value)


def _coerce(kind: str | None, value: float | int | bool) -> FieldValue:
    if kind == "float" and not isinstance(value, bool):
        return float(value)
    if kind == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# The parts of a reading's line that are the same for every reading of a device and metric, kept ready: the
# series text (measurement and tags) and each field's escaped key with its kind. Bounded by device count.
@lru_cache(maxsize=100_000)
def _series(domain: str, device: str, device_type: str, street: str, site: str,
            extra: tuple[tuple[str, str], ...]) -> str:
    return series_key(domain, {"device": device, "type": device_type, "street": street, "site": site, **dict(extra)})


@cache
def _field_key(device_type: str, name: str) -> tuple[str, str | None]:
    return escape_key(name), _metric_kind(device_type, name)


def _field(device_type: str, name: str, value: float | int | bool) -> str:
    key, kind = _field_key(device_type, name)
    return f"{key}={format_field(_coerce(kind, value))}"


# Per device type: each metric's "key=" text and kind, found with one dict lookup by name (the functools caches
# hash every argument on each call). Bounded by the catalog's types and their metrics.
_PLAIN_FIELDS: dict[str, dict[str, tuple[str, str | None]]] = {}


def _fields_text(device_type: str, values: Mapping[str, float | int | bool]) -> str:
    """A plain reading's fields, the same text as ``_field`` for each: a float metric's float written at once."""
    keys = _PLAIN_FIELDS.get(device_type)
    if keys is None:
        keys = _PLAIN_FIELDS.setdefault(device_type, {})
    parts = []
    for name, value in values.items():
        entry = keys.get(name)
        if entry is None:
            key, kind = _field_key(device_type, name)
            entry = keys[name] = (key + "=", kind)
        prefix, kind = entry
        if kind == "float" and type(value) is float and isfinite(value):
            parts.append(prefix + repr(value))
        else:
            parts.append(prefix + format_field(_coerce(kind, value)))
    return ",".join(parts)


def point_line(point: Point) -> str:
    """Line protocol for one reading: measurement = domain, registry tags, metrics as fields.

    Station readings add: a ``period`` tag on period means (``minute``, ``hour``, ``day``; real-time points
    stay untagged, so their series are those of any other device), each data flag as a ``<metric>_flag``
    string field, a value whose flag is not valid as ``<metric>_invalid`` (never as ``<metric>``, which
    panels and means read), and ``backfill=true`` on data the logger sent again from its memory.
    """
    if point.period == DEFAULT_PERIOD and not (point.flags or point.invalid or point.backfill) and point.values:
        # A plain reading: the same text as below, from the device's series and keys kept ready.
        series = _series(point.domain, point.device_id, point.type, point.street, point.site,
                         tuple(point.tags.items()))
        return f"{series} {_fields_text(point.type, point.values)} {int(point.ts_ms)}"
    tags = {"device": point.device_id, "type": point.type, "street": point.street, "site": point.site,
            **point.tags}
    fields: dict[str, FieldValue | None] = {k: _typed(point.type, k, v) for k, v in point.values.items()}
    if point.period != DEFAULT_PERIOD:
        tags["period"] = point.period
    if point.flags or point.invalid or point.backfill:
        fields.update({f"{k}_invalid": _typed(point.type, k, v) for k, v in point.invalid.items()})
        fields.update({f"{k}_flag": v for k, v in point.flags.items()})
        if point.backfill:
            fields["backfill"] = True
    return encode_line(point.domain, tags, fields, point.ts_ms)


def status_line(status: StatusEvent) -> str:
    """Line protocol for one status event in ``device_status``."""
    tags = {"device": status.device_id, "domain": status.domain, "street": status.street, "site": status.site}
    fields: dict[str, FieldValue | None] = {
        "online": 1 if status.online else 0,
        "battery": None if status.battery is None else float(status.battery),
        "rssi": None if status.rssi is None else float(status.rssi),
    }
    return encode_line("device_status", tags, fields, status.ts_ms)


def line_protocol(batch: Batch) -> list[str]:
    """All lines of a batch: readings first, then status events."""
    return [point_line(p) for p in batch.points] + [status_line(s) for s in batch.statuses]
