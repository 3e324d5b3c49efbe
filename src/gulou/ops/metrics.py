"""``/healthz`` and Prometheus ``/metrics`` for a long-running service.

The figures are read at scrape time from the snapshot a service already keeps (the collector's health dict,
the rules service's stats), so the hot paths carry no extra bookkeeping and the two views cannot disagree.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIEnvironment

from prometheus_client import make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from gulou.ops.health import State, Verdict

log = logging.getLogger(__name__)
Snapshot = Callable[[], Mapping[str, Any]]


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def collector_families(health: Mapping[str, Any]) -> list[Metric]:
    """Metric families of one collector's health report."""
    cid = str(health.get("collector", ""))
    labels = ["collector"]

    def counter(name: str, doc: str, key: str) -> CounterMetricFamily:
        family = CounterMetricFamily(name, doc, labels=labels)
        family.add_metric([cid], _num(health.get(key)))
        return family

    def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
        family = GaugeMetricFamily(name, doc, labels=labels)
        family.add_metric([cid], value)
        return family

    families: list[Metric] = [
        counter("gulou_ingest_received", "Messages received from the source", "received"),
        counter("gulou_ingest_stored", "Readings and statuses durably stored", "stored"),
        counter("gulou_ingest_spooled", "Messages written to the disk spool on their way to the sink", "spooled"),
        counter("gulou_ingest_rejected", "Messages kept as dead letters", "rejected"),
        counter("gulou_ingest_reconnects", "Reconnections to the source", "reconnects"),
        gauge("gulou_ingest_connected", "1 while connected to the source", 1.0 if health.get("connected") else 0.0),
        gauge("gulou_ingest_stalled", "1 while the subscription is stalled", 1.0 if health.get("stalled") else 0.0),
    ]
    by_reason = CounterMetricFamily("gulou_ingest_rejected_by_reason", "Dead letters by reason",
                                    labels=["collector", "reason"])
    for reason, n in sorted((health.get("rejected_by_reason") or {}).items()):
        by_reason.add_metric([cid, str(reason)], _num(n))
    families.append(by_reason)
    spool = health.get("spool") or {}
    if spool:
        families += [
            gauge("gulou_ingest_spool_depth_batches", "Batches waiting in the spool", _num(spool.get("depth"))),
            gauge("gulou_ingest_spool_bytes", "Bytes used by the spool", _num(spool.get("bytes"))),
            gauge("gulou_ingest_spool_fill_ratio", "Spool bytes over its limit", _num(spool.get("fill_ratio"))),
        ]
    lag = GaugeMetricFamily("gulou_ingest_lag_seconds", "Age of readings when stored (observation to storage)",
                            labels=["collector", "quantile"])
    for quantile, key in (("0.5", "p50"), ("0.99", "p99")):
        ages = health.get("age_at_store_ms") or {}
        if key in ages:
            lag.add_metric([cid, quantile], _num(ages[key]) / 1000)
    families.append(lag)
    since = health.get("seconds_since_message")
    if since is not None:
        families.append(gauge("gulou_ingest_seconds_since_message", "Seconds since the last delivery", _num(since)))
    return families


def rules_families(stats: Mapping[str, Any]) -> list[Metric]:
    """Metric families of the rules service's stats (``RulesService.stats()``)."""
    engine = stats.get("engine") or {}
    families: list[Metric] = []
    for key, doc in (("readings", "Readings evaluated"), ("statuses", "Statuses seen"),
                     ("transitions", "Alert transitions (fired, re-notified, resolved)"),
                     ("late_ignored", "Readings too late to evaluate"),
                     ("unknown_device", "Readings of unknown devices")):
        families.append(CounterMetricFamily(f"gulou_rules_{key}", doc, value=_num(engine.get(key))))
    families.append(CounterMetricFamily("gulou_rules_dropped", "Readings dropped on a full queue",
                                        value=_num(stats.get("dropped"))))
    families.append(GaugeMetricFamily("gulou_rules_queued", "Readings waiting for the engine",
                                      value=_num(stats.get("queued"))))
    families.append(GaugeMetricFamily("gulou_rules_active_alerts", "Alerts firing now",
                                      value=_num(stats.get("active_alerts"))))
    delivered = CounterMetricFamily("gulou_alert_deliveries", "Alert notifications delivered", labels=["channel"])
    failed = CounterMetricFamily("gulou_alert_delivery_failures",
                                 "Notifications that failed every attempt and were kept for redelivery",
                                 labels=["channel"])
    retries = CounterMetricFamily("gulou_alert_delivery_retries", "Delivery attempts retried", labels=["channel"])
    for channel, counts in sorted((stats.get("channels") or {}).items()):
        delivered.add_metric([channel], _num(counts.get("delivered")) + _num(counts.get("redelivered")))
        failed.add_metric([channel], _num(counts.get("kept")) + _num(counts.get("overflow")))
        retries.add_metric([channel], _num(counts.get("retries")))
    return [*families, delivered, failed, retries]


def gateway_families(stats: Mapping[str, Any]) -> list[Metric]:
    """Metric families of the HJ 212 gateway's accounting (``Hj212Server.stats()``)."""
    packets = stats.get("packets") or {}
    connections = stats.get("connections") or {}
    outcomes = CounterMetricFamily("gulou_hj212_packets", "Station packets by outcome (received counts all)",
                                   labels=["outcome"])
    for outcome, n in sorted(packets.items()):
        if outcome != "in_flight":
            outcomes.add_metric([str(outcome)], _num(n))
    rejected = CounterMetricFamily("gulou_hj212_rejected_by_reason", "Station packets dead-lettered, by reason",
                                   labels=["reason"])
    for reason, n in sorted((stats.get("by_reason") or {}).items()):
        rejected.add_metric([str(reason)], _num(n))
    links = CounterMetricFamily("gulou_hj212_connections", "Station links by event", labels=["event"])
    for event, n in sorted(connections.items()):
        if event != "open":
            links.add_metric([str(event)], _num(n))
    return [outcomes, rejected, links,
            GaugeMetricFamily("gulou_hj212_connections_open", "Station links open now",
                              value=_num(connections.get("open"))),
            GaugeMetricFamily("gulou_hj212_packets_in_flight", "Packets waiting for the broker's acknowledgement",
                              value=_num(packets.get("in_flight"))),
            CounterMetricFamily("gulou_hj212_bytes_received", "Bytes read from station links",
                                value=_num((stats.get("bytes") or {}).get("received")))]


class SnapshotCollector(Collector):
    """A Prometheus collector that turns a snapshot into metric families on every scrape."""

    def __init__(self, snapshot: Callable[[], Iterable[Mapping[str, Any]]],
                 families: Callable[[Mapping[str, Any]], list[Metric]]) -> None:
        self._snapshot = snapshot
        self._families = families

    def collect(self) -> Iterator[Metric]:
        """Metric families of the current snapshot(s); a failing snapshot yields nothing rather than an error."""
        try:
            snapshots = list(self._snapshot())
        except Exception as exc:  # a scrape must never take the service down
            log.warning("metrics snapshot failed: %s", exc)
            return
        merged: dict[str, Metric] = {}
        for snap in snapshots:
            for family in self._families(snap):
                if family.name in merged:
                    merged[family.name].samples.extend(family.samples)
                else:
                    merged[family.name] = family
        yield from merged.values()


def health_family(verdicts: Iterable[Verdict]) -> GaugeMetricFamily:
    """``gulou_health_state{component}``: 0 ok, 1 degraded, 2 down."""
    family = GaugeMetricFamily("gulou_health_state", "0 ok, 1 degraded, 2 down", labels=["component"])
    for verdict in verdicts:
        family.add_metric([verdict.component], float(int(verdict.state)))
    return family


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds would flood the log."""


class OpsServer:
    """Serves ``/metrics`` (Prometheus text format) and ``/healthz`` (JSON; 503 when down) on its own thread."""

    def __init__(self, host: str, port: int, registry: CollectorRegistry,
                 health: Callable[[], list[Verdict]]) -> None:
        self.registry = registry
        self._health = health
        self._metrics_app = make_wsgi_app(registry)
        self._server = make_server(host, port, self._app, server_class=_Server, handler_class=_QuietHandler)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port it listens on (useful with port 0)."""
        return int(self._server.server_address[1])

    def _app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/healthz":
            try:
                verdicts = self._health()
            except Exception as exc:
                verdicts = [Verdict("service", State.DOWN, (f"health check failed: {exc}",))]
            state = max((v.state for v in verdicts), default=State.DOWN)
            body = json.dumps({"state": state.label, "components": [v.to_json() for v in verdicts]},
                              ensure_ascii=False).encode()
            status = "503 Service Unavailable" if state is State.DOWN else "200 OK"
            start_response(status, [("Content-Type", "application/json; charset=utf-8")])
            return [body]
        if path == "/metrics":
            result: Iterable[bytes] = self._metrics_app(environ, start_response)
            return result
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"/metrics or /healthz\n"]

    def start(self) -> None:
        """Serve on a daemon thread."""
        self._thread = threading.Thread(target=self._server.serve_forever, name="ops-http", daemon=True)
        self._thread.start()
        log.info("metrics on http://%s:%s/metrics, health on /healthz", *self._server.server_address[:2])

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (or ``:PORT`` for every interface) into host and port."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{value!r}: give HOST:PORT, e.g. 127.0.0.1:9108")
    return host.strip("[]") or "0.0.0.0", int(port)
