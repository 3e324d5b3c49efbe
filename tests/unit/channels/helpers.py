"""A notification made by the real engine, shared by the unit and integration tests of the channels."""

from __future__ import annotations

from gulou.devices.registry import Registry
from gulou.rules.alerts import AlertTransition
from gulou.rules.engine import Engine
from tests.unit.rules.test_rules_engine import at, reading, rule


def firing(registry: Registry) -> AlertTransition:
    """A firing notification: bin fire temperature 75 °C against a limit of 60 °C."""
    r = rule("kind: threshold\ndomain: waste\nmetric: temperature\nop: '>='\nlimit: 60",
             message="{site_name}疑似起火 {value:.0f}°C")
    bin_ = registry.get("bin-001-rec")
    assert bin_ is not None
    return Engine([r], registry).process(reading(bin_, at(0), temperature=75.0))[0]
