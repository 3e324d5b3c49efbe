"""Fixtures for the bus tests: a private 3-node JetStream cluster per test (tests kill and restart nodes)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bus_cluster import NatsCluster, nats_cluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    """Three nats-server nodes with JetStream on free loopback ports, each with its own store."""
    with nats_cluster(tmp_path / "nats", size=3) as running:
        yield running


@pytest.fixture
def single_node(tmp_path: Path) -> Iterator[NatsCluster]:
    """One nats-server with JetStream (no cluster)."""
    with nats_cluster(tmp_path / "nats1", size=1) as running:
        yield running
