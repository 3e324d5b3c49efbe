"""A real VictoriaMetrics process for integration tests: the InfluxDB ``/api/v2/write`` endpoint we test against."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.servers import free_port, require_binary


@dataclass
class VictoriaMetrics:
    """A VictoriaMetrics process owned by a test; ``stop``/``start`` keep the port and the data."""

    binary: str
    port: int
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL for the InfluxDB client (``/api/v2/write`` lives under it)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start (or restart) on the same port and data directory; returns once ``/health`` answers."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = (self.workdir / "victoria-metrics.log").open("ab")
        self.proc = subprocess.Popen(
            [
                self.binary,
                f"-storageDataPath={self.workdir / 'data'}",
                f"-httpListenAddr=127.0.0.1:{self.port}",
                "-retentionPeriod=100y",
                # InfluxDB overwrites a point with the same series and timestamp; VictoriaMetrics only
                # does that with deduplication on (it keeps one sample per series per millisecond).
                "-dedup.minScrapeInterval=1ms",
                "-search.latencyOffset=0s",
                "-selfScrapeInterval=0",
                "-loggerLevel=ERROR",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"victoria-metrics exited with {self.proc.returncode}; see {self.workdir}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"victoria-metrics on port {self.port} not healthy after 20 s")

    def stop(self) -> None:
        """Stop gracefully (VictoriaMetrics flushes its in-memory parts on SIGTERM)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def _get(self, path: str, **params: str) -> bytes:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=30) as resp:
            body: bytes = resp.read()
            return body

    def export(self, match: str) -> list[dict[str, Any]]:
        """All series matching a selector, e.g. ``water_ph`` or ``{__name__=~"water_.*"}``, after a flush.

        Each item is ``{"metric": {labels}, "values": [...], "timestamps": [...]}``.
        """
        # Freshly written rows are invisible to queries until flushed (benchmarks.md).
        self._get("/internal/force_flush")
        body = self._get("/api/v1/export", **{"match[]": match})
        return [json.loads(line) for line in body.splitlines() if line.strip()]

    def count_samples(self, metric_name: str) -> int:
        """Number of samples stored under one metric name, over all its series."""
        return sum(len(s["values"]) for s in self.export(f'{{__name__="{metric_name}"}}'))


@contextmanager
def victoria_metrics_server(workdir: Path) -> Iterator[VictoriaMetrics]:
    """Run VictoriaMetrics from the Debian binary on a free port for the duration of the block."""
    server = VictoriaMetrics(require_binary("victoria-metrics", "victoria-metrics"), free_port(), workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
