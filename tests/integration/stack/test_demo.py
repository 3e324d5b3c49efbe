"""``gulou demo`` flat out: the simulator waits for the collector, so nothing published goes unaccounted, and
the end view puts the most severe alerts first."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ORDER = ["critical", "high", "medium", "low", "informational"]


def test_demo_at_any_speed_accounts_for_every_message(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GULOU_")}
    done = subprocess.run([sys.executable, "-m", "gulou", "demo", "--sim-hours", "1", "--speed", "100000", "--json",
                           "--store", str(tmp_path / "demo.db")], capture_output=True, env=env, cwd=tmp_path,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    result = json.loads(done.stdout)
    assert result["published"] > 1000
    assert result["unaccounted"] == 0, {k: result[k] for k in ("published", "stored", "rejected", "spooled")}
    assert b"Timeout waiting for PUBACK" not in done.stderr
    ranks = [ORDER.index(a["severity"]) for a in result["alerts"]]
    assert ranks == sorted(ranks)
    assert sum(result["alerts_by_severity"].values()) == len(result["alerts"])
