"""Health verdicts: ok, degraded or down, from what a service reports about itself, with an exit code each."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

# A collector writes its health every 5 s; three missed reports and more mean it is gone or hung.
STALE_AFTER_S = 30.0
# Spool filling beyond this share of its limit: the sink has been away for a while.
SPOOL_WARN_RATIO = 0.8


class State(IntEnum):
    """A service's state; the value is the exit code of ``gulou health`` (0 ok, 1 degraded, 2 down)."""

    OK = 0
    DEGRADED = 1
    DOWN = 2

    @property
    def label(self) -> str:
        """``ok``, ``degraded`` or ``down``."""
        return self.name.lower()


@dataclass(frozen=True)
class Verdict:
    """One component's state and the reasons behind it (empty when ok)."""

    component: str
    state: State
    reasons: tuple[str, ...] = ()
    figures: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form for ``gulou health --json`` and ``/healthz``."""
        return {"component": self.component, "state": self.state.label, "reasons": list(self.reasons),
                **({"figures": dict(self.figures)} if self.figures else {})}


def worst(verdicts: Iterable[Verdict]) -> State:
    """The worst state among verdicts (down when there is none: nothing reported)."""
    states = [v.state for v in verdicts]
    return max(states) if states else State.DOWN


def spool_full(spool: Mapping[str, Any]) -> bool:
    """Whether a spool report says it takes nothing more (bytes at the limit, or marked full, e.g. disk full)."""
    if spool.get("full"):
        return True
    ratio = spool.get("fill_ratio")
    return isinstance(ratio, int | float) and ratio >= 1.0


def collector_verdict(client_id: str, health: Mapping[str, Any], age_s: float | None,
                      stale_after_s: float = STALE_AFTER_S) -> Verdict:
    """The verdict on one collector from its last health report, ``age_s`` seconds old (None: never reported)."""
    if age_s is None:
        return Verdict(client_id, State.DOWN, ("no health report from this collector",))
    figures = {k: health[k] for k in ("connected", "stalled", "reconnects", "received", "stored", "rejected")
               if k in health}
    spool = health.get("spool") or {}
    if spool:
        figures["spool"] = spool
    down: list[str] = []
    degraded: list[str] = []
    if age_s > stale_after_s:
        down.append(f"last health report {age_s:.0f} s ago (is the collector running?)")
    if health.get("connected") is not True:
        down.append("not connected to the broker")
    if health.get("stalled"):
        down.append("subscription stalled: connected but no deliveries and no probe echo")
    if spool_full(spool):
        reason = spool.get("full_reason") or "limit reached"
        down.append(f"spool full ({reason}): messages are not acknowledged and wait at the broker")
    elif int(spool.get("depth") or 0) > 0:
        ratio = float(spool.get("fill_ratio") or 0.0)
        note = f"{spool.get('depth')} batches spooled, spool {ratio:.0%} full: the sink is not taking writes"
        degraded.append(note)
    if down:
        return Verdict(client_id, State.DOWN, tuple(down + degraded), figures)
    if float(spool.get("fill_ratio") or 0.0) >= SPOOL_WARN_RATIO and not degraded:
        degraded.append(f"spool {float(spool['fill_ratio']):.0%} full")
    return Verdict(client_id, State.DEGRADED if degraded else State.OK, tuple(degraded), figures)


def select(collectors: Mapping[str, Any], prefix: str | None) -> dict[str, Any]:
    """The collectors whose client id is ``prefix`` or ``prefix-<anything>`` (all when no prefix)."""
    if not prefix:
        return dict(collectors)
    return {cid: h for cid, h in collectors.items() if cid == prefix or cid.startswith(prefix + "-")}


def gateway_verdict(stats: Mapping[str, Any], connected: bool, component: str = "hj212") -> Verdict:
    """The HJ 212 gateway: down while its broker is unreachable (stations get no 9014 and send again)."""
    packets = stats.get("packets") or {}
    figures = {"open_connections": (stats.get("connections") or {}).get("open", 0),
               **{k: packets[k] for k in ("received", "delivered", "rejected", "failed") if k in packets}}
    if not connected:
        return Verdict(component, State.DOWN, ("broker unreachable: stations are not answered and send again",),
                       figures)
    return Verdict(component, State.OK, (), figures)


def rules_verdict(stats: Mapping[str, Any], connected: bool, component: str = "rules") -> Verdict:
    """The rules service: down while it hears no readings, degraded while notifications wait or readings drop."""
    figures = {k: stats[k] for k in ("queued", "dropped", "active_alerts") if k in stats}
    if not connected:
        return Verdict(component, State.DOWN, ("not connected to the broker: no readings reach the rules",), figures)
    degraded = []
    for channel, counts in sorted((stats.get("channels") or {}).items()):
        waiting = int(counts.get("kept", 0)) + int(counts.get("overflow", 0)) - int(counts.get("redelivered", 0))
        if waiting > 0:
            degraded.append(f"{channel}: {waiting} notifications waiting for redelivery")
    if int(stats.get("dropped") or 0) > 0:
        degraded.append(f"{stats['dropped']} readings dropped on a full queue since start")
    return Verdict(component, State.DEGRADED if degraded else State.OK, tuple(degraded), figures)
