"""The ops endpoint of a long-running service, built from what the service already knows about itself."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from prometheus_client.core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from gulou.ops.check import check_collectors, collector_reports
from gulou.ops.health import Verdict, collector_verdict, gateway_verdict, rules_verdict, select
from gulou.ops.metrics import (
    OpsServer,
    SnapshotCollector,
    collector_families,
    gateway_families,
    health_family,
    parse_listen,
    rules_families,
)

Reports = Callable[[], list[Mapping[str, Any]]]


class _HealthCollector(Collector):
    """``gulou_health_state`` from the same verdicts ``/healthz`` gives."""

    def __init__(self, verdicts: Callable[[], list[Verdict]]) -> None:
        self._verdicts = verdicts

    def collect(self) -> list[Metric]:
        """One gauge family."""
        return [health_family(self._verdicts())]


class Endpoint:
    """What one process serves: collectors' reports and/or a rules service's stats."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._verdicts: list[Callable[[], list[Verdict]]] = []
        self.registry.register(_HealthCollector(self.verdicts))

    def add_collectors(self, reports: Reports) -> Endpoint:
        """Collectors running in this process; ``reports`` gives each one's live health dict."""
        self.registry.register(SnapshotCollector(reports, collector_families))
        self._verdicts.append(lambda: [collector_verdict(str(h.get("collector", "collector")), h, 0.0)
                                       for h in reports()])
        return self

    def add_store_collectors(self, store: Path, prefix: str | None) -> Endpoint:
        """Collectors that report into the store (one process or its ``--workers``), read at each request."""

        def reports() -> list[Mapping[str, Any]]:
            try:
                found = select(collector_reports(store), prefix)
            except FileNotFoundError:
                return []
            return [{"collector": cid, **health} for cid, (health, _) in sorted(found.items())]

        self.registry.register(SnapshotCollector(reports, collector_families))
        self._verdicts.append(lambda: check_collectors(store, prefix))
        return self

    def add_rules(self, stats: Callable[[], Mapping[str, Any]], connected: Callable[[], bool]) -> Endpoint:
        """A rules service running in this process."""
        self.registry.register(SnapshotCollector(lambda: [stats()], rules_families))
        self._verdicts.append(lambda: [rules_verdict(stats(), connected())])
        return self

    def add_gateway(self, stats: Callable[[], Mapping[str, Any]], connected: Callable[[], bool]) -> Endpoint:
        """An HJ 212 gateway running in this process."""
        self.registry.register(SnapshotCollector(lambda: [stats()], gateway_families))
        self._verdicts.append(lambda: [gateway_verdict(stats(), connected())])
        return self

    def verdicts(self) -> list[Verdict]:
        """Every component's verdict now."""
        return [v for source in self._verdicts for v in source()]

    def serve(self, listen: str) -> OpsServer:
        """Start serving ``/metrics`` and ``/healthz`` on ``HOST:PORT``."""
        host, port = parse_listen(listen)
        server = OpsServer(host, port, self.registry, self.verdicts)
        server.start()
        return server
