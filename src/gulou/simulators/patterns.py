"""The pattern of each device type: the type names its pattern (``DeviceType.simulator``), resolved here.

A new device type adds no line here: its module says ``simulator = "gulou.simulators.<module>:<Class>"``.
"""

from __future__ import annotations

import functools
import importlib

from gulou.devices.catalog import CATALOG
from gulou.devices.registry import Device
from gulou.simulators.base import Environment, Pattern


@functools.cache
def _load(reference: str) -> type[Pattern]:
    module, _, name = reference.partition(":")
    try:
        found = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise KeyError(f"simulator {reference!r} cannot be loaded: {exc}") from None
    if not (isinstance(found, type) and issubclass(found, Pattern)):
        raise KeyError(f"simulator {reference!r} is not a Pattern subclass")
    return found


def pattern_class(type_name: str) -> type[Pattern]:
    """The Pattern subclass a device type names; a missing or mismatched one is a clear error."""
    dtype = CATALOG.get(type_name)
    reference = getattr(dtype, "simulator", None)
    if dtype is None or reference is None:
        raise KeyError(f"no simulator pattern for device type {type_name!r} (set `simulator` on its DeviceType)")
    cls = _load(reference)
    if cls.type_name != type_name:
        raise KeyError(f"simulator {reference!r} models {cls.type_name!r}, not {type_name!r}")
    return cls


def patterns() -> dict[str, type[Pattern]]:
    """Every catalog type's pattern, by type name."""
    return {name: pattern_class(name) for name in CATALOG}


def pattern_for(device: Device, seed: int, env: Environment) -> Pattern:
    """A fresh pattern instance for one device."""
    return pattern_class(device.type)(device, seed, env)
