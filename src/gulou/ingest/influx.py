"""InfluxDB sink: line protocol for the storage schema and a synchronous ``/api/v2/write`` client."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from gulou.devices.catalog import CATALOG
from gulou.ingest.records import Batch, Point, StatusEvent
from gulou.ingest.sink import Sink, SinkError

if TYPE_CHECKING:
    from gulou.settings import Settings

log = logging.getLogger(__name__)

FieldValue = float | int | bool | str

# Escaping follows the line-protocol reference (and the official client): measurement names escape
# commas and spaces; tag keys, tag values and field keys also escape '='; string field values escape
# double quotes and backslashes. Control characters would end the line, so they are escaped too.
_ESCAPE_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n", "\r": r"\r", "\t": r"\t"})
_ESCAPE_KEY = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\r": r"\r", "\t": r"\t"})
_ESCAPE_STRING = str.maketrans({'"': r"\"", "\\": r"\\", "\n": r"\n"})

# 4xx answers that mean "this data will never be accepted" (dead-letter it); every other failure,
# including 401/403/404 (token or bucket misconfigured) and 429, is an outage worth spooling for.
_REJECTING_STATUSES = frozenset({400, 413, 422})


class SinkRejected(SinkError):
    """The store refused the batch itself (bad data): retrying cannot help, so dead-letter it."""


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


def encode_line(measurement: str, tags: Mapping[str, str | None], fields: Mapping[str, FieldValue | None],
                ts_ms: int) -> str:
    """One line of line protocol with millisecond timestamp; empty tags and ``None`` fields are left out."""
    parts = [escape_measurement(measurement)]
    # Sorted tag keys are what InfluxDB stores anyway; sending them sorted saves it the work.
    parts.extend(f",{escape_key(k)}={escape_key(v)}" for k, v in sorted(tags.items()) if v)
    encoded = ",".join(f"{escape_key(k)}={format_field(v)}" for k, v in fields.items() if v is not None)
    if not encoded:
        raise ValueError(f"{measurement} line at {ts_ms} has no fields")
    return f"{''.join(parts)} {encoded} {int(ts_ms)}"


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
    kind = _metric_kind(device_type, name)
    if kind == "float" and not isinstance(value, bool):
        return float(value)
    if kind == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def point_line(point: Point) -> str:
    """Line protocol for one reading: measurement = domain, registry tags, metrics as fields."""
    tags = {"device": point.device_id, "type": point.type, "street": point.street, "site": point.site,
            **point.tags}
    fields = {k: _typed(point.type, k, v) for k, v in point.values.items()}
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


class InfluxSink(Sink):
    """Writes batches to InfluxDB 2.x/3.x, 1.8+ or VictoriaMetrics through ``/api/v2/write``."""

    name = "influxdb"

    def __init__(self, url: str, org: str | None, bucket: str, token: str | None, timeout_s: float = 10) -> None:
        # Imported here so that modules needing only SinkRejected or line protocol stay light.
        from influxdb_client.client.influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        self.url = url
        self.org = org or ""
        self.bucket = bucket
        self._client: Any = InfluxDBClient(url=url, token=token or "", org=self.org,
                                           timeout=int(timeout_s * 1000), retries=False)
        # SYNCHRONOUS only: the batching WriteApi acknowledges before the server has the points and
        # drops them on errors (influxdb-client-python #80, #144, #198).
        self._api: Any = self._client.write_api(write_options=SYNCHRONOUS)

    @classmethod
    def from_settings(cls, settings: Settings, timeout_s: float = 10) -> InfluxSink:
        """Build from ``GULOU_INFLUX_URL/ORG/BUCKET/TOKEN`` (token also from ``GULOU_INFLUX_TOKEN_FILE``)."""
        if not settings.influx_url:
            raise ValueError("no InfluxDB URL: set GULOU_INFLUX_URL (or --influx-url)")
        if not settings.influx_bucket:
            raise ValueError("no InfluxDB bucket: set GULOU_INFLUX_BUCKET (InfluxDB 1.8: database/retention)")
        return cls(settings.influx_url, settings.influx_org, settings.influx_bucket, settings.influx_secret(),
                   timeout_s=timeout_s)

    def write(self, batch: Batch) -> None:
        """Write a batch of readings and status events; returns once the server accepted it."""
        if len(batch):
            self.write_lines(line_protocol(batch))

    def write_lines(self, lines: Iterable[str]) -> None:
        """Write ready-made line-protocol lines (pipeline_health, completeness, alerts)."""
        from influxdb_client.domain.write_precision import WritePrecision

        body = "\n".join(lines)
        if not body:
            return
        try:
            self._api.write(bucket=self.bucket, org=self.org, record=body, write_precision=WritePrecision.MS)
        except Exception as exc:
            raise self._translate(exc) from exc

    def _translate(self, exc: Exception) -> SinkError:
        status = getattr(exc, "status", None)
        if isinstance(status, int) and status > 0:
            body = str(getattr(exc, "body", "") or getattr(exc, "reason", "") or "").strip()[:300]
            message = f"InfluxDB at {self.url} answered HTTP {status}: {body or exc}"
            return SinkRejected(message) if status in _REJECTING_STATUSES else SinkError(message)
        return SinkError(f"InfluxDB at {self.url} unreachable: {type(exc).__name__}: {exc}")

    def flush(self) -> None:
        """Nothing to do: every ``write`` is synchronous."""

    def close(self) -> None:
        """Close the HTTP client."""
        self._api.close()
        self._client.close()
