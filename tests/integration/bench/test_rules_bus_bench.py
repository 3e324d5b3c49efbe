"""``gulou bench rules --bus`` at a small size, run as the command: every published reading is evaluated once."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.servers import require_binary

pytestmark = pytest.mark.integration
READINGS = 2000


def run_bench(*flags: str) -> dict[str, Any]:
    """The command's JSON; it starts its own 3-node JetStream cluster, Mosquitto and worker processes."""
    require_binary("nats-server", "nats-server")
    require_binary("mosquitto", "mosquitto")
    proc = subprocess.run([sys.executable, "-m", "gulou", "bench", "rules", "--bus", "--readings", str(READINGS),
                           *flags, "--json"], capture_output=True, timeout=540, check=False)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
    data: dict[str, Any] = json.loads(proc.stdout)
    assert data["published"] == READINGS and data["replicas"] == 3 and data["nats_nodes"] == 3
    assert data["workers_exited"] == 0, proc.stderr.decode(errors="replace")[-3000:]
    assert [w["exit_code"] for w in data["per_worker"]] == [0] * len(data["per_worker"]), "graceful stops"
    assert all(not w["worker"].startswith("#") for w in data["per_worker"]), "every worker logged its stop"
    return data


@pytest.mark.timeout(600)
def test_two_workers_started_before_the_readings_evaluate_each_reading_once() -> None:
    data = run_bench("--workers", "2", "--live")
    assert len(data["per_worker"]) == 2
    assert data["evaluated"] == data["published"] and data["lost"] == 0
    assert data["bus_readings_per_s"] > 0 and data["in_memory_readings_per_s"] > 0


@pytest.mark.timeout(600)
def test_one_worker_evaluates_a_backlog_once() -> None:
    data = run_bench("--workers", "1")
    assert data["evaluated"] == data["published"] and data["lost"] == 0


# Both workers start on a full stream: the first to look takes every partition and hands half over when the
# second appears, committing first, so nothing is evaluated twice.
@pytest.mark.timeout(600)
def test_two_workers_started_on_a_backlog_evaluate_each_reading_once() -> None:
    data = run_bench("--workers", "2")
    assert data["evaluated"] == data["published"] and data["lost"] == 0
