"""A firing notification for the channel tests."""

from __future__ import annotations

import pytest

from gulou.devices.registry import Registry
from gulou.rules.alerts import AlertTransition
from tests.unit.channels.helpers import firing


@pytest.fixture
def fired(registry: Registry) -> AlertTransition:
    """A firing notification from the real engine."""
    return firing(registry)
