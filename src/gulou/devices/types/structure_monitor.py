"""Housing-safety monitoring point on an old building: inclinometer, crack gauge, settlement, vibration."""

import random
from collections.abc import Mapping
from typing import Any, ClassVar

from gulou.devices.base import DeviceType, Metric, Value


class StructureMonitor(DeviceType):
    """One monitored point of a building (JGJ 125 hazardous-house monitoring)."""

    name: ClassVar[str] = "structure_monitor"
    domain: ClassVar[str] = "structure"
    description: ClassVar[str] = "Building monitoring point (tilt, crack width, settlement, vibration PPV)"
    default_interval_s: ClassVar[int] = 600
    metrics: ClassVar[tuple[Metric, ...]] = (
        Metric("tilt_x", "°", "Inclination about the x axis", minimum=-45, maximum=45),
        Metric("tilt_y", "°", "Inclination about the y axis", minimum=-45, maximum=45),
        Metric("crack_width", "mm", "Crack width at the gauge", minimum=0, maximum=100),
        Metric("settlement", "mm", "Cumulative settlement since installation", minimum=-500, maximum=500),
        Metric("vibration", "mm/s", "Peak particle velocity", minimum=0, maximum=500),
    )
    site_kind: ClassVar[str] = "building"
    site_fields: ClassVar[tuple[str, ...]] = ("storeys", "structure_type")
    battery: ClassVar[bool] = True
    synthetic_share: ClassVar[float] = 0.17
    calm: ClassVar[Mapping[str, Value]] = {"tilt_x": 0.2, "tilt_y": 0.1, "crack_width": 0.3, "settlement": -1.0,
                                           "vibration": 0.5}
    # Gauges drift slowly: noise on them would read as crack growth or a settlement rate.
    calm_noise: ClassVar[float] = 0.0
    simulator: ClassVar[str] = "gulou.simulators.structure:StructurePattern"

    def synthetic_site(self, rng: random.Random, n: int) -> dict[str, Any]:
        """A low old building."""
        return {"storeys": rng.randint(1, 7), "structure_type": rng.choice(("masonry", "brick-wood"))}
