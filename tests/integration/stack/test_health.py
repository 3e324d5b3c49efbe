"""Each service's compose health check, run as compose runs it, follows the service: ok while it works, failing
while the collector is disconnected, stalled or its spool full, or while the rules engine hears nothing."""

from __future__ import annotations

import json
import os
import signal
import urllib.request
from typing import Any

import pytest

from tests.integration.stack.devices import reading
from tests.integration.stack.stack import Stack, until
from tests.integration.stack.test_stack import device, wait_collector_connected

pytestmark = pytest.mark.integration
OK, DEGRADED, DOWN = 0, 1, 2


def health(stack: Stack, service: str) -> tuple[int, str]:
    """The health check's exit code and what it printed."""
    done = stack.healthcheck(service)
    return done.returncode, (done.stdout + done.stderr).decode()


def until_health(stack: Stack, service: str, code: int, what: str, timeout: float = 60,
                 between: Any = None) -> str:
    """Run the health check until it exits with ``code``; returns its output."""
    seen: list[tuple[int, str]] = []

    def check() -> str | None:
        if between is not None:
            between()
        seen.append(health(stack, service))
        return seen[-1][1] or "(no output)" if seen[-1][0] == code else None

    try:
        return until(check, timeout, f"{service} health check to exit {code} ({what})", interval=0.5)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last: {seen[-1] if seen else None}\n{stack.log(service)[-3000:]}") from None


def test_health_checks_follow_the_broker(stack: Stack) -> None:
    wait_collector_connected(stack)
    until_health(stack, "ingest", OK, "collector connected")
    until_health(stack, "rules", OK, "rules engine connected")
    port = stack.port("ingest", stack.services["ingest"].environment["GULOU_OPS__LISTEN"].rpartition(":")[2])
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        assert 'gulou_ingest_connected{collector="gulou-ingest-1"} 1.0' in resp.read().decode()

    stack.stop("mosquitto")
    out = until_health(stack, "ingest", DOWN, "collector disconnected")
    assert "not connected" in out
    assert "not connected" in until_health(stack, "rules", DOWN, "rules engine disconnected")

    stack.start_mosquitto()
    until_health(stack, "ingest", OK, "collector reconnected")
    until_health(stack, "rules", OK, "rules engine reconnected")


def test_a_stalled_collector_fails_its_health_check(stack: Stack) -> None:
    wait_collector_connected(stack)
    until_health(stack, "ingest", OK, "collector connected")
    broker = stack.procs["mosquitto"]
    # A broker that accepts connections and answers nothing: the collector hears no echo of its probe.
    os.kill(broker.pid, signal.SIGSTOP)
    try:
        out = until_health(stack, "ingest", DOWN, "subscription stalled", timeout=90)
        assert "stalled" in out or "not connected" in out
    finally:
        os.kill(broker.pid, signal.SIGCONT)
    until_health(stack, "ingest", OK, "collector recovered", timeout=90)


def test_a_full_spool_fails_the_health_check_and_recovers(stack: Stack) -> None:
    # A small spool limit, so a handful of readings fills it.
    stack.stop("ingest")
    stack.start("ingest", extra_env={"GULOU_SPOOL__MAX_BYTES": "3000"})
    wait_collector_connected(stack)
    stack.vm.stop()
    ne = device(stack, "st-001-ne")
    sent = [0]

    def publish() -> None:
        sent[0] += 1
        ne.publish("gulou/structure/st-001-ne/telemetry", reading(600 - sent[0], vibration=0.5, seq=sent[0]))

    try:
        out = until_health(stack, "ingest", DEGRADED, "spooling while the sink is away", between=publish)
        assert "spooled" in out
        out = until_health(stack, "ingest", DOWN, "spool full", between=publish, timeout=120)
        assert "spool full" in out
    finally:
        ne.close()
    stack.vm.start()
    until_health(stack, "ingest", OK, "spool replayed once the sink is back", timeout=120)
    done = stack.run("ingest", ["stats", "--json"])
    stats: dict[str, Any] = json.loads(done.stdout)
    assert stats["received"] == stats["stored"] + stats["rejected"] + stats["spooled"]
