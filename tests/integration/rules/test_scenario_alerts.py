"""The shipped incidents scenario through a real broker, the collector and the rules engine: every domain's
alert fires when the script says, resolves after the incident, and reaches the webhook and MQTT."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from gulou.app.pipeline import Pipeline, run_pipeline
from gulou.devices.registry import Registry
from gulou.rules.model import HeldRule, RateRule, load_rules
from gulou.settings import Settings, parse_broker_url
from gulou.simulators.publisher import SimConfig, run_simulation
from gulou.simulators.scenario import Incident, Scenario, load_scenario, schedule
from tests.integration.rules.helpers import Webhook, delivered_everywhere
from tests.servers import Mosquitto
from tests.waiting import wait_for_async

pytestmark = pytest.mark.integration
SECRET = "scenario-webhook-secret"
# The simulator's incident envelopes: a pm25 episode ramps over 15 % of its duration at each end, a black-odour
# section reaches its light state within the first 10 % (gulou.simulators.base.envelope, simulators.water).
EPISODE_RAMP = 0.15
ODOUR_RAMP = 0.10
RULES = {r.id: r for r in load_rules()}
HOUR_S = 3600.0
ODOUR_SETTLE_S = 3 * HOUR_S


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    """A signed-webhook endpoint for the test."""
    hook = Webhook(SECRET)
    yield hook
    hook.close()


@dataclass(frozen=True)
class Expect:
    """One rule on one incident's devices: when (offsets from the start, s) it must fire and resolve."""

    rule_id: str
    incident: int
    fire: tuple[float, float]
    resolve: tuple[float, float] | None


def _expectations(scenario: Scenario, registry: Registry) -> tuple[list[Expect], dict[int, list[str]]]:
    """Expected windows computed from the scenario's ``at``/``duration`` and the rules' hold conditions."""
    targets: dict[int, list[str]] = {}
    plan = schedule(scenario, registry)
    for i, incident in enumerate(scenario.incidents):
        targets[i] = sorted(d for d, items in plan.items()
                            if any(s.kind == incident.kind and s.start_s == incident.at for s in items))
    kinds: dict[str, int] = {incident.kind: i for i, incident in enumerate(scenario.incidents)}

    def interval(i: int) -> float:
        return max(registry.devices[d].interval_s for d in targets[i])

    def inc(kind: str) -> tuple[int, Incident]:
        return kinds[kind], scenario.incidents[kinds[kind]]

    out: list[Expect] = []
    i, e = inc("pm25_episode")
    ramp = EPISODE_RAMP * e.duration
    for rule in ("air-aqi-over-100", "air-aqi-over-150", "air-aqi-over-200"):
        # The hourly AQI is judged per clock hour and stamped with the hour's start: an alert carries the start
        # of the first hour whose mean is over, and resolves with the first hour back under the clear limit.
        out.append(Expect(rule, i, (e.at - HOUR_S, e.at + ramp + HOUR_S),
                          (e.at + e.duration - ramp - HOUR_S, e.at + e.duration + HOUR_S)))
    i, e = inc("black_odour")
    held = RULES["water-black-odour-light"]
    assert isinstance(held, HeldRule) and held.for_count is not None
    end = e.at + e.duration
    light_hold = (held.for_count - 1) * interval(i)
    out += [
        Expect("water-do-below-2", i, (e.at, e.at + ODOUR_RAMP * e.duration + interval(i)),
               (end, end + interval(i))),
        Expect("water-black-odour-light", i, (e.at + light_hold,
                                              e.at + ODOUR_RAMP * e.duration + light_hold + interval(i)),
               (end, end + interval(i))),
        # Severe is graded over the day's samples: it fires once enough of them are severe and clears once
        # enough calm ones follow (ODOUR_SETTLE_S bounds both for this scenario's 2 h of severe samples).
        Expect("water-black-odour-severe", i, (e.at + e.duration / 2, e.at + e.duration),
               (end, end + ODOUR_SETTLE_S)),
    ]
    i, e = inc("bin_overflow")
    end = e.at + e.duration
    out.append(Expect("waste-bin-overflow", i, (e.at, e.at + interval(i)), (end, end + interval(i))))
    i, e = inc("bin_fire")
    rise = RULES["waste-bin-fire-rise"]
    assert isinstance(rise, RateRule)
    end = e.at + e.duration
    # A rise over the rule's window needs two readings at least min_span apart, the later one in the fire.
    out += [Expect("waste-bin-fire-rise", i, (e.at, e.at + rise.window_s + interval(i)), (e.at, end + interval(i))),
            Expect("waste-bin-fire-temperature", i, (e.at, e.at + 15 * 60 + interval(i)), (end, end + interval(i)))]
    i, e = inc("lot_full")
    end = e.at + e.duration
    out.append(Expect("parking-full", i, (e.at, e.at + interval(i)), (end, end + interval(i))))
    i, e = inc("building_tilt")
    growth = RULES["structure-crack-growth"]
    assert isinstance(growth, RateRule)
    end = e.at + e.duration
    out.append(Expect("structure-crack-growth", i, (max(e.at, growth.min_span_s), end), (end, end + interval(i))))
    for rule in ("structure-tilt-yellow", "structure-tilt-orange", "structure-tilt-red"):
        out.append(Expect(rule, i, (e.at, end), (end, end + interval(i))))
    i, e = inc("device_silent")
    end = e.at + e.duration
    # The retained offline status carries the incident's start time; the first reading afterwards clears it.
    out.append(Expect("device-offline-air", i, (e.at, e.at), (end, end + interval(i))))
    return out, targets


def _subset(registry: Registry, ids: set[str]) -> Registry:
    devices = {k: d for k, d in registry.devices.items() if k in ids}
    sites = {d.site.id: d.site for d in devices.values()}
    return Registry(sites=sites, devices=devices, source=f"{registry.source} (subset)")


async def _run(url: str, registry: Registry, hook: Webhook, store: Path, start: datetime,
               sim_s: float) -> dict[str, Any]:
    settings = Settings(broker=url, webhook_url=hook.url, webhook_secret=SECRET, store=store,
                        client_id="gulou-test-scenario")
    broker = parse_broker_url(url)
    stop = asyncio.Event()
    mqtt: list[dict[str, Any]] = []
    out: dict[str, Any] = {"mqtt": mqtt}

    async def subscribe(ready: asyncio.Event) -> None:
        async with aiomqtt.Client(broker.host, broker.port, identifier="gulou-test-scenario-sub") as client:
            await client.subscribe("gulou/alerts/#", qos=1)
            ready.set()
            async for message in client.messages:
                mqtt.append({"topic": message.topic.value, **json.loads(bytes(message.payload))})

    async def play(p: Pipeline) -> None:
        assert p.rules is not None
        ready = asyncio.Event()
        reader = asyncio.create_task(subscribe(ready), name="alert-subscriber")
        await asyncio.wait_for(ready.wait(), 10)
        await wait_for_async(lambda: p.rules is not None and p.rules.channels_ready(), 10, "every channel ready")
        config = SimConfig(registry=registry, scenario=load_scenario("incidents"), seed=1, start=start,
                           sim_duration=sim_s, speed=0, offline_at_end=False, client_prefix="gulou-test-sim")
        summary = await run_simulation(config, broker)
        out["summary"] = summary
        await wait_for_async(lambda: p.collector.totals.received >= summary.published, 30,
                             f"the collector to receive all {summary.published} messages")
        assert await p.rules.drain(timeout=20)
        # Every transition the engine made must reach both outside channels.
        made = p.rules.engine.stats.transitions
        await wait_for_async(lambda: len(hook.received) >= made and len(mqtt) >= made, 30,
                             f"{made} transitions at the webhook and on MQTT")
        p.rules.tick()  # the clock at the end of the run must not invent silent devices
        assert await p.rules.drain(timeout=10)
        await delivered_everywhere(p.rules, lambda: len(mqtt))
        out["transitions"] = p.rules.engine.stats.transitions
        out["active"] = p.rules.engine.active()
        reader.cancel()

    await run_pipeline(settings, registry, stop, clock="event", on_ready=play)
    return out




@pytest.mark.timeout(120)
def test_incidents_fire_resolve_and_deliver_on_time(own_mosquitto: Mosquitto, registry: Registry,
                                                     webhook: Webhook, tmp_path: Path) -> None:
    scenario = load_scenario("incidents")
    expectations, targets = _expectations(scenario, registry)
    subset = _subset(registry, {d for ids in targets.values() for d in ids})
    assert len(subset) <= 12
    # Long enough for the last incident to end and every device to report once more, and for the graded
    # black-odour alert to clear.
    last_end = max(inc.at + inc.duration for inc in scenario.incidents)
    odour = next(inc for inc in scenario.incidents if inc.kind == "black_odour")
    sim_s = max(last_end, odour.at + odour.duration + ODOUR_SETTLE_S) + 2 * max(d.interval_s for d in subset)
    start = (datetime.now(UTC) - timedelta(seconds=sim_s + 3600)).replace(second=0, microsecond=0)
    result = asyncio.run(_run(own_mosquitto.url, subset, webhook, tmp_path / "gulou.db", start, sim_s))

    assert result["summary"].unsent == 0
    mqtt = result["mqtt"]
    events = [m for m in mqtt if m["event"] in ("firing", "resolved")]

    def offset(stamp: str) -> float:
        return (datetime.fromisoformat(stamp) - start).total_seconds()

    for exp in expectations:
        for device in targets[exp.incident]:
            fired = [m for m in events if m["rule_id"] == exp.rule_id and m["device_id"] == device
                     and m["event"] == "firing"]
            assert fired, f"{exp.rule_id} never fired on {device}"
            first = offset(fired[0]["first_seen"])
            lo, hi = exp.fire
            assert lo <= first <= hi, f"{exp.rule_id} on {device} fired at +{first:.0f} s, expected {lo:.0f}..{hi:.0f}"
            if exp.resolve is None:
                continue
            resolved = [m for m in events if m["alert_id"] == fired[0]["alert_id"] and m["event"] == "resolved"]
            assert resolved, f"{exp.rule_id} on {device} did not resolve"
            at = offset(resolved[0]["resolved_at"])
            lo, hi = exp.resolve
            assert lo <= at <= hi, f"{exp.rule_id} on {device} resolved at +{at:.0f} s, expected {lo:.0f}..{hi:.0f}"
    # Tilt tiers escalate in order on each monitoring point.
    tilt = targets[next(i for i, inc in enumerate(scenario.incidents) if inc.kind == "building_tilt")]
    for device in tilt:
        times = [next(offset(m["first_seen"]) for m in events if m["rule_id"] == f"structure-tilt-{tier}"
                      and m["device_id"] == device) for tier in ("yellow", "orange", "red")]
        assert times == sorted(times)
    # Only the silent station goes offline: no absence alert from the event clock, none at the end of the run.
    offline = {m["device_id"] for m in events if m["rule_id"].startswith("device-offline")}
    silent = targets[next(i for i, inc in enumerate(scenario.incidents) if inc.kind == "device_silent")]
    assert offline == set(silent)
    assert result["active"] == [], [(a["rule_id"], a["device_id"]) for a in result["active"]]
    # Every firing and resolution reached MQTT on its topic and the webhook, correctly signed.
    assert len(mqtt) == result["transitions"]
    for m in mqtt:
        assert m["topic"] == f"gulou/alerts/{m['domain']}/{m['device_id']}"
    assert webhook.bad_signatures == 0
    assert {(m["alert_id"], m["event"]) for m in webhook.received} == {(m["alert_id"], m["event"]) for m in mqtt}
    assert {m["domain"] for m in events} == {"air", "water", "waste", "parking", "structure"}


@pytest.mark.timeout(120)
def test_demo_accounts_for_every_message(tmp_path: Path) -> None:
    store = tmp_path / "demo.db"
    done = subprocess.run([sys.executable, "-m", "gulou", "demo", "--sim-hours", "1", "--speed", "3600", "--json",
                           "--store", str(store)], capture_output=True, text=True, timeout=110,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["published"] > 0 and result["unaccounted"] == 0
    assert result["stored"] + result["rejected"] + result["spooled"] == result["published"]
    # The store itself, not the demo's own summary of it: every published message is a row somewhere.
    with closing(sqlite3.connect(f"{store.resolve().as_uri()}?mode=ro", uri=True)) as db:
        readings, statuses, dead = (db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                                    for t in ("readings", "statuses", "deadletters"))
        counted = dict(db.execute("SELECT outcome, SUM(n) FROM counts GROUP BY outcome").fetchall())
    # A duplicate (same device and ts) overwrites its first copy; rejected messages are dead letters.
    assert readings + statuses + result["faults"]["duplicate"] + dead == result["published"]
    assert dead == result["rejected"] == counted.get("rejected", 0)
    assert counted["received"] == result["published"] and counted["stored"] == result["stored"]
    assert readings > 0 and statuses > 0
    # The run ends without every device announcing it went offline.
    assert not [a for a in result["alerts"] if a["rule_id"].startswith("device-offline")]
