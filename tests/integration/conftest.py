"""Fixtures for integration tests: real servers as local processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tsdb import VictoriaMetrics, victoria_metrics_server


@pytest.fixture
def victoria_metrics(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    """A private VictoriaMetrics (InfluxDB ``/api/v2/write`` API) a test may stop and restart."""
    with victoria_metrics_server(tmp_path / "victoria-metrics") as server:
        yield server
