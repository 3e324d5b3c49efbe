"""Health verdicts of a collector from its reported health."""

from __future__ import annotations

from typing import Any

from gulou.ops.health import State, Verdict, collector_verdict, gateway_verdict, rules_verdict, select, worst

HEALTHY: dict[str, Any] = {"connected": True, "stalled": False, "reconnects": 0, "received": 10, "stored": 10,
                           "rejected": 0, "spool": {"depth": 0, "bytes": 0, "max_bytes": 100, "fill_ratio": 0.0}}


def verdict(age_s: float | None = 2.0, **changes: Any) -> Verdict:
    return collector_verdict("gulou-ingest-1", {**HEALTHY, **changes}, age_s)


def test_connected_collector_with_empty_spool_is_ok() -> None:
    v = verdict()
    assert v.state is State.OK and v.reasons == ()
    assert v.to_json()["state"] == "ok"


def test_disconnected_stalled_or_silent_collectors_are_down() -> None:
    assert verdict(connected=False).state is State.DOWN
    assert verdict(stalled=True).state is State.DOWN
    assert verdict(age_s=31.0).state is State.DOWN
    assert verdict(age_s=None).state is State.DOWN
    assert "stalled" in " ".join(verdict(stalled=True).reasons)


def test_full_spool_is_down_and_a_filling_one_degraded() -> None:
    full = verdict(spool={"depth": 40, "fill_ratio": 1.0})
    assert full.state is State.DOWN and "spool full" in full.reasons[0]
    disk = verdict(spool={"depth": 3, "fill_ratio": 0.1, "full": True, "full_reason": "disk full"})
    assert disk.state is State.DOWN and "disk full" in disk.reasons[0]
    assert verdict(spool={"depth": 2, "fill_ratio": 0.01}).state is State.DEGRADED
    assert verdict(spool={"depth": 0, "fill_ratio": 0.85}).state is State.DEGRADED


def test_exit_codes_and_worst_state() -> None:
    assert [int(s) for s in (State.OK, State.DEGRADED, State.DOWN)] == [0, 1, 2]
    assert worst([verdict(), verdict(spool={"depth": 1, "fill_ratio": 0.0})]) is State.DEGRADED
    assert worst([verdict(), verdict(connected=False)]) is State.DOWN
    assert worst([]) is State.DOWN


def test_select_by_slot_prefix() -> None:
    rows = {"gulou-ingest-1": 1, "gulou-ingest-1-0": 2, "gulou-ingest-10": 3, "other": 4}
    assert set(select(rows, "gulou-ingest-1")) == {"gulou-ingest-1", "gulou-ingest-1-0"}
    assert set(select(rows, None)) == set(rows)


def test_rules_verdict() -> None:
    calm = {"queued": 0, "dropped": 0, "channels": {"mqtt": {"delivered": 3}}}
    assert rules_verdict(calm, connected=True).state is State.OK
    assert rules_verdict(calm, connected=False).state is State.DOWN
    waiting = {**calm, "channels": {"webhook": {"delivered": 1, "kept": 3, "redelivered": 1}}}
    verdict = rules_verdict(waiting, connected=True)
    assert verdict.state is State.DEGRADED and verdict.reasons == ("webhook: 2 notifications waiting for redelivery",)
    assert rules_verdict({**calm, "dropped": 5}, connected=True).state is State.DEGRADED


def test_gateway_is_down_while_its_broker_is_unreachable() -> None:
    stats = {"packets": {"received": 5, "delivered": 3, "rejected": 1, "failed": 1, "in_flight": 0},
             "connections": {"open": 2, "accepted": 2}}
    up = gateway_verdict(stats, connected=True)
    assert up.state is State.OK and up.figures == {"open_connections": 2, "received": 5, "delivered": 3,
                                                     "rejected": 1, "failed": 1}
    down = gateway_verdict(stats, connected=False)
    assert down.state is State.DOWN and "broker unreachable" in down.reasons[0]
