"""Housing-safety monitoring point on an old building: inclinometer, crack gauge, settlement, vibration."""

from typing import ClassVar

from gulou.devices.base import DeviceType, Domain, Metric


class StructureMonitor(DeviceType):
    """One monitored point of a building (JGJ 125 hazardous-house monitoring)."""

    name: ClassVar[str] = "structure_monitor"
    domain: ClassVar[Domain] = "structure"
    description: ClassVar[str] = "Building monitoring point (tilt, crack width, settlement, vibration PPV)"
    default_interval_s: ClassVar[int] = 600
    metrics: ClassVar[tuple[Metric, ...]] = (
        Metric("tilt_x", "°", "Inclination about the x axis", minimum=-45, maximum=45),
        Metric("tilt_y", "°", "Inclination about the y axis", minimum=-45, maximum=45),
        Metric("crack_width", "mm", "Crack width at the gauge", minimum=0, maximum=100),
        Metric("settlement", "mm", "Cumulative settlement since installation", minimum=-500, maximum=500),
        Metric("vibration", "mm/s", "Peak particle velocity", minimum=0, maximum=500),
    )
