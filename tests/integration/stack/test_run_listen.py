"""``gulou run --listen``: the embedded default reachable by a real device on the given address; the pipeline's
own /healthz and /metrics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.integration.stack.devices import connect, reading
from tests.integration.stack.stack import until
from tests.servers import free_port, wait_for_port

pytestmark = pytest.mark.integration


def test_gulou_run_listens_where_told(tmp_path: Path) -> None:
    port = free_port()
    store = tmp_path / "gulou.db"
    ops_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GULOU_")}
    proc = subprocess.Popen([sys.executable, "-m", "gulou", "run", "--listen", f"127.0.0.1:{port}", "--store",
                             str(store)], env={**env, "GULOU_OPS__LISTEN": f"127.0.0.1:{ops_port}"},
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(port, timeout=30, proc=proc)
        device = connect(port, "st-001-ne", "any", client_id="st-001-ne")  # the embedded broker is anonymous
        sent = [0]

        def stored() -> bool:
            # The port opens before the collector subscribes: a reading sent before that reaches nobody.
            sent[0] += 1
            device.publish("gulou/structure/st-001-ne/telemetry", reading(sent[0], vibration=0.5))
            done = subprocess.run([sys.executable, "-m", "gulou", "stats", "--json", "--store", str(store)],
                                  capture_output=True, env=env, check=False)
            return done.returncode == 0 and json.loads(done.stdout)["stored"] >= 1

        until(stored, 60, "the device's readings stored", interval=0.5)
        device.close()
        # The pipeline serves its own /healthz and /metrics: collector and rules engine.
        with urllib.request.urlopen(f"http://127.0.0.1:{ops_port}/healthz", timeout=5) as resp:
            components = {c["component"]: c["state"] for c in json.loads(resp.read())["components"]}
        assert components.get("rules") == "ok" and "ok" in components.values(), components
        with urllib.request.urlopen(f"http://127.0.0.1:{ops_port}/metrics", timeout=5) as resp:
            assert "gulou_ingest_stored_total" in resp.read().decode()
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert b"anonymous, no TLS" in err


def test_listen_needs_host_and_port(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "gulou", "run", "--listen", "everywhere"], capture_output=True,
                          cwd=tmp_path, check=False)
    assert done.returncode == 2 and b"HOST:PORT" in done.stderr
