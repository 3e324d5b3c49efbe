"""``gulou demo``: the pipeline on an embedded broker with simulated devices and incidents, shown live."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from gulou.app.pipeline import Pipeline, run_pipeline
from gulou.devices.registry import Registry
from gulou.rules.model import SEVERITIES
from gulou.settings import Settings
from gulou.simulators.publisher import SimConfig, SimProgress, SimSummary, run_simulation
from gulou.simulators.scenario import Scenario
from gulou.sinks.embedded import EmbeddedStore
from gulou.timeutil import CHINA_TZ


async def run_demo(settings: Settings, registry: Registry, scenario: Scenario, start: datetime, sim_hours: float,
                   speed: float, seed: int, console: Console, stop: asyncio.Event) -> dict[str, Any]:
    """Play the scenario through the pipeline; returns the accounting and the alerts it raised."""
    result: dict[str, Any] = {}

    async def play(p: Pipeline) -> None:
        # The pipeline outlives the simulation: the devices should not all announce they went away.
        config = SimConfig(registry=registry, scenario=scenario, seed=seed, start=start,
                           sim_duration=sim_hours * 3600, speed=speed, offline_at_end=False)
        latest: list[SimProgress] = []
        end = start.timestamp() + sim_hours * 3600
        with Live(console=console, refresh_per_second=4, transient=False) as live:
            async def refresh() -> None:
                while True:
                    live.update(_panel(p, settings, latest[-1] if latest else None, start.timestamp(), end))
                    await asyncio.sleep(0.25)

            ticker = asyncio.create_task(refresh(), name="demo-display")
            try:
                # Back-pressure: at any speed the simulator waits for the collector instead of flooding the
                # embedded broker, so everything published is accounted for.
                summary = await run_simulation(config, p.broker, progress=latest.append, stop=stop,
                                               consumed=lambda: p.collector.totals.received)
                await _settle(p, settings, summary)
            finally:
                ticker.cancel()
                live.update(_panel(p, settings, latest[-1] if latest else None, start.timestamp(), end))
        console.line()
        result.update(_final(p, settings, summary))

    await run_pipeline(settings, registry, stop, clock="event", on_ready=play)
    return result


async def _settle(p: Pipeline, settings: Settings, summary: SimSummary, timeout: float = 30) -> None:
    """Wait until the collector has accounted for everything published, and the rules engine caught up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        t = p.collector.totals
        if t.received >= summary.published:
            break
        await asyncio.sleep(0.2)
    if p.rules is not None:
        await p.rules.drain(timeout=10)


def _progress(progress: SimProgress | None, start_s: float, end_s: float) -> tuple[str, str]:
    """How far the simulated hours are (percent) and the real time left at the pace so far."""
    if progress is None or progress.elapsed_s <= 0:
        return "0 %", "-"
    done = min(1.0, max(0.0, (progress.sim_time.timestamp() - start_s) / max(end_s - start_s, 1.0)))
    if done <= 0:
        return "0 %", "-"
    left = progress.elapsed_s * (1 - done) / done
    return f"{done:.0%}", f"{int(left // 60)}:{int(left % 60):02d}"


def _panel(p: Pipeline, settings: Settings, progress: SimProgress | None, start_s: float = 0.0,
           end_s: float = 0.0) -> Group:
    t = p.collector.totals
    head = Table.grid(padding=(0, 2))
    sim = beijing_short(progress.sim_time) if progress else "-"
    rate = f"{progress.msgs_per_s:,.0f}" if progress else "-"
    done, left = _progress(progress, start_s, end_s)
    head.add_row("simulated time (Beijing)", sim, "done", done, "time left", left, "published/s", rate)
    head.add_row("stored", f"{t.stored:,}", "rejected", f"{t.rejected:,}", "spooled", f"{t.spooled:,}", "", "")
    domains = Table(title="per domain (stored)", show_edge=False)
    for domain in sorted(t.by_domain):
        domains.add_column(domain, justify="right")
    domains.add_row(*(f"{t.by_domain[d]:,}" for d in sorted(t.by_domain)))
    alerts = Table(title="alerts", show_edge=False)
    for col in ("state", "severity", "rule", "device", "value", "limit"):
        alerts.add_column(col)
    if p.rules is not None and p.rules.store is not None:
        # The most severe first, then the newest: a critical incident never scrolls away behind low ones.
        for a in by_severity(p.rules.store.alerts())[:8]:
            colour = "red" if a["state"] == "firing" else "green"
            alerts.add_row(f"[{colour}]{a['state']}[/]", str(a["severity"]), str(a["rule_id"]),
                           str(a["device_id"]), _num(a.get("value")), _num(a.get("limit")))
    return Group(head, domains, alerts)


def _num(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, int | float) else "-"


def _final(p: Pipeline, settings: Settings, summary: SimSummary) -> dict[str, Any]:
    store = EmbeddedStore(Path(settings.store))
    try:
        stats = store.stats()
    finally:
        store.close()
    alerts = by_severity(p.rules.store.alerts()) if p.rules is not None and p.rules.store is not None else []
    accounted = stats["stored"] + stats["rejected"] + stats["spooled"]
    counts = {s: sum(a["severity"] == s for a in alerts) for s in reversed(SEVERITIES)}
    return {"published": summary.published, "stored": stats["stored"], "rejected": stats["rejected"],
            "spooled": stats["spooled"], "unaccounted": summary.published - accounted,
            "by_domain": stats["by_domain"], "by_reason": stats["by_reason"], "faults": summary.faults,
            "alerts": alerts, "alerts_by_severity": counts, "scenario": summary.scenario,
            "sim_time_reached": summary.sim_time_reached}


def by_severity(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Critical first, down to informational; within a severity firing before resolved, then the newest."""
    rank = {s: i for i, s in enumerate(reversed(SEVERITIES))}
    newest_first = sorted(alerts, key=lambda a: str(a.get("first_seen", "")), reverse=True)
    return sorted(newest_first, key=lambda a: (rank.get(str(a.get("severity")), len(rank)), a.get("state") != "firing"))


def beijing_short(moment: datetime) -> str:
    """``11-26 08:00`` in Beijing time, for the live table."""
    return moment.astimezone(CHINA_TZ).strftime("%m-%d %H:%M")


