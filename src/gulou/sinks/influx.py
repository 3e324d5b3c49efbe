"""InfluxDB sink: a synchronous ``/api/v2/write`` client for the line protocol of ``gulou.tsdb``."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from gulou.tsdb.line_protocol import line_protocol
from gulou.tsdb.records import Batch
from gulou.tsdb.writer import Sink, SinkError, SinkRejected

if TYPE_CHECKING:
    from gulou.settings import Settings

log = logging.getLogger(__name__)

# 4xx answers that mean "this data will never be accepted" (dead-letter it); every other failure,
# including 401/403/404 (token or bucket misconfigured) and 429, is an outage worth spooling for.
_REJECTING_STATUSES = frozenset({400, 413, 422})


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
    def from_settings(cls, settings: Settings) -> InfluxSink | None:
        """From ``settings.influx`` (``GULOU_INFLUX__URL`` or ``GULOU_INFLUX_URL``...); None when no URL is set."""
        section = settings.influx
        if not section.url:
            return None
        required = (("GULOU_INFLUX_ORG", section.org), ("GULOU_INFLUX_BUCKET", section.bucket))
        missing = [name for name, value in required if not value]
        if missing:
            raise ValueError(f"GULOU_INFLUX_URL is set but {', '.join(missing)} is not"
                             " (InfluxDB 1.8: any org, bucket database/retention)")
        return cls(section.url, section.org, section.bucket or "", section.secret(), timeout_s=section.timeout_s)

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
