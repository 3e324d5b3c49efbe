"""The simulator's normal state is normal: a quiet day raises no air-quality or structural alerts."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from gulou.devices.contract import Decoder, Rejection
from gulou.devices.registry import Registry
from gulou.rules.engine import Engine
from gulou.rules.model import load_rules
from gulou.simulators import generate
from gulou.timeutil import CHINA_TZ as CST

# Buildings graded B/C with cracks below the alert width, and Fuzhou air (hourly AQI mostly 20-80).
NEVER_ON_A_QUIET_DAY = {"structure-crack-width", "structure-crack-growth", "structure-settlement-rate",
                        "structure-tilt-yellow", "air-aqi-over-100", "air-pm25-24h-class2"}


# Seed 1 has stagnant winter weather on this day: the worst case for the air stations.
START = datetime(2026, 11, 26, 6, tzinfo=CST)


def test_quiet_day_raises_no_air_or_structure_alert(registry: Registry) -> None:
    subset = Registry(devices={k: d for k, d in registry.devices.items()
                               if d.type in ("air_station", "structure_monitor")}, sites=registry.sites)
    engine = Engine(load_rules(), subset)
    decoder = Decoder(subset)
    fired: Counter[str] = Counter()
    rejected: Counter[str] = Counter()
    evaluated = 0
    # Decoded as of the end of the simulated day, so no reading counts as from the future whatever today is.
    now = START + timedelta(hours=12)
    for message in generate(subset, seed=1, start=START, sim_duration=12 * 3600, offline_at_end=False):
        item = decoder.decode(message.topic, message.payload, now=now)
        if isinstance(item, Rejection):
            rejected[item.reason] += 1
            continue
        evaluated += 1
        fired.update(t.alert.rule_id for t in engine.process(item) if t.event == "firing")
    # A quiet day without faults is all valid: a rejected reading would be a reading the rules never saw.
    assert rejected == Counter() and evaluated > 1000, (rejected, evaluated)
    assert not set(fired) & NEVER_ON_A_QUIET_DAY, fired
