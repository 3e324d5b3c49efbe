"""The simulator publishing to real brokers: everything published arrives, retained statuses stay."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import pytest

from gulou.devices.catalog import DOMAINS as CATALOG_DOMAINS
from gulou.devices.registry import Registry
from gulou.settings import parse_broker_url
from gulou.simulators import SimConfig, SimSummary, load_scenario, run_simulation
from tests.integration.simulators.subscriber import listening, retained_statuses, settle
from tests.servers import Mosquitto
from tests.unit.simulators.helpers import START, per_type, subset

pytestmark = pytest.mark.integration
DOMAINS = set(CATALOG_DOMAINS)
FAULTS = {"malformed": 0.01, "duplicate": 0.01, "unknown_device": 0.01, "out_of_order": 0.01}


async def publish_and_listen(url: str, config: SimConfig, skip_retained: bool) -> tuple[SimSummary, list[str]]:
    async with listening(url, skip_retained=skip_retained) as received:
        summary = await run_simulation(config, parse_broker_url(url))
        await settle(received, summary.published)
    return summary, received.topics


def check(summary: SimSummary, topics: list[str], registry: Registry) -> None:
    assert summary.stopped == "complete" and summary.unsent == 0
    assert len(topics) == summary.published
    by_domain = {d: sum(1 for t in topics if t.split("/")[1] == d) for d in DOMAINS}
    assert by_domain == summary.by_domain and all(n > 0 for n in by_domain.values())
    statuses = [t for t in topics if t.endswith("/status")]
    assert len(statuses) == summary.status == summary.retained["online"] + summary.retained["offline"]
    assert summary.retained == {"online": len(registry), "offline": len(registry)}


def test_publishes_everything_to_mosquitto_at_qos1(mosquitto: Mosquitto, registry: Registry) -> None:
    config = SimConfig(registry=registry, scenario=load_scenario("quiet"), seed=3, start=START, sim_duration=1800,
                       speed=0, fault_rates=FAULTS, connections=3)
    summary, topics = asyncio.run(publish_and_listen(mosquitto.url, config, skip_retained=True))
    check(summary, topics, registry)
    assert all(summary.faults[k] > 0 for k in FAULTS)
    ghosts = [t for t in topics if registry.get(t.split("/")[2]) is None]
    assert len(ghosts) == summary.faults["unknown_device"]
    retained = asyncio.run(retained_statuses(mosquitto.url, len(registry)))
    assert set(retained) >= set(registry.devices)
    assert {retained[d]["state"] for d in registry.devices} == {"offline"}


def test_publishes_everything_to_the_embedded_broker(embedded_broker: str, registry: Registry) -> None:
    small = subset(registry, per_type(registry, 2))
    config = SimConfig(registry=small, scenario=load_scenario("quiet"), seed=4, start=START, sim_duration=3600,
                       speed=0, connections=2)
    summary, topics = asyncio.run(publish_and_listen(embedded_broker, config, skip_retained=False))
    check(summary, topics, small)
    retained = asyncio.run(retained_statuses(embedded_broker, len(small)))
    assert set(retained) == set(small.devices)
    assert {s["state"] for s in retained.values()} == {"offline"}


def test_silent_device_leaves_a_retained_offline(own_mosquitto: Mosquitto, registry: Registry) -> None:
    scenario = load_scenario("incidents")
    config = SimConfig(registry=subset(registry, ["aq-012", "aq-001"]), scenario=scenario.model_copy(update={
        "incidents": [i for i in scenario.incidents if i.kind == "device_silent"]}),
        seed=1, start=START, sim_duration=4.5 * 3600, speed=0)

    async def body() -> dict[str, dict[str, object]]:
        async with listening(own_mosquitto.url) as received:
            summary = await run_simulation(config, parse_broker_url(own_mosquitto.url))
            await settle(received, summary.published)
        # The run ends mid-silence: aq-012's retained status is the offline of 04:00, not a closing one.
        return await retained_statuses(own_mosquitto.url, 2)

    retained = asyncio.run(body())
    assert retained["aq-012"]["state"] == "offline" and retained["aq-012"]["ts"] == "2026-11-23T04:00:00+08:00"
    assert retained["aq-001"]["ts"] == "2026-11-23T04:30:00+08:00"


def test_cli_summary_matches_what_a_subscriber_got(mosquitto: Mosquitto) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GULOU_")}

    async def body() -> tuple[dict[str, object], list[str]]:
        async with listening(mosquitto.url) as received:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gulou", "simulate", "--broker", mosquitto.url, "--speed", "0",
                "--sim-duration", "3600", "--seed", "7", "--json", "--start", "2026-11-23T08:00:00+08:00",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
            out, err = await asyncio.wait_for(proc.communicate(), 120)
            assert proc.returncode == 0, err.decode()
            summary = json.loads(out)
            await settle(received, summary["published"])
        return summary, received.topics

    summary, topics = asyncio.run(body())
    assert summary["published"] == len(topics) and summary["unsent"] == 0
    assert summary["by_domain"] == {d: sum(1 for t in topics if t.split("/")[1] == d) for d in DOMAINS}
    assert summary["devices"] == 389 and summary["retained"] == {"online": 389, "offline": 389}
    assert summary["sim_time_reached"] == "2026-11-23T09:00:00+08:00"
    assert summary["telemetry"] == sum(1 for t in topics if t.endswith("/telemetry")) > 7000
