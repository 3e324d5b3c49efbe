"""Building monitoring: small noise around a slow drift, thermal breathing, traffic vibration."""

from __future__ import annotations

import math
from datetime import datetime
from typing import ClassVar

from gulou.devices.registry import Device
from gulou.simulators.base import Active, Environment, Noise, Pattern, Values
from gulou.simulators.model import local_hour

# During building_tilt the extra tilt grows with the square of elapsed time (an accelerating lean).
TILT_EXTRA_DEG = 1.6  # beyond tan⁻¹(0.02) ≈ 1.15°, the limit for buildings of 3+ storeys
CRACK_EXTRA_MM = 3.0
SETTLEMENT_EXTRA_MM = -8.0


class StructurePattern(Pattern):
    """One inclinometer/crack-gauge point of an old building."""

    type_name: ClassVar[str] = "structure_monitor"
    incidents: ClassVar[tuple[str, ...]] = ("building_tilt",)
    decimals: ClassVar[dict[str, int]] = {"tilt_x": 4, "tilt_y": 4, "crack_width": 3, "settlement": 2,
                                          "vibration": 3}

    def __init__(self, device: Device, seed: int, env: Environment) -> None:
        super().__init__(device, seed, env)
        u = self.rng.uniform
        older = (device.site.built or 1980) < 1960
        self.tilt = (u(-0.35, 0.35), u(-0.35, 0.35))
        self.drift_deg_per_day = (u(-4e-4, 4e-4), u(-4e-4, 4e-4))
        # Grade B/C buildings: existing cracks stay below the 1.0 mm alert width in normal service.
        self.crack = u(0.2, 0.8) if older else u(0.05, 0.5)
        self.crack_per_day = u(0.0, 0.004)
        self.settlement = u(-9.0, 1.0)
        self.settle_per_day = u(-0.03, 0.0)
        self.n_tilt = (Noise(0.003, 3600), Noise(0.003, 3600))
        self.n_crack = Noise(0.002, 3600)  # about the resolution of a vibrating-wire crack meter
        self.n_settle = Noise(0.05, 6 * 3600)
        # The incident leans the building along its existing tilt.
        norm = math.hypot(*self.tilt)
        self.lean = (self.tilt[0] / norm, self.tilt[1] / norm) if norm > 0.01 else (1.0, 0.0)

    def sample(self, moment: datetime, offset_s: float, dt_s: float, active: Active) -> Values:
        """Baseline plus drift since the start, thermal breathing and noise; accelerating tilt if scripted."""
        days = offset_s / 86400
        thermal = math.cos(2 * math.pi * (local_hour(moment) - 15) / 24)
        tilt_x = self.tilt[0] + self.drift_deg_per_day[0] * days + 0.004 * thermal + self.noise(self.n_tilt[0], dt_s)
        tilt_y = self.tilt[1] + self.drift_deg_per_day[1] * days + 0.003 * thermal + self.noise(self.n_tilt[1], dt_s)
        # Cracks open a little in the cool of the night as the masonry contracts.
        crack = self.crack + self.crack_per_day * days - 0.01 * thermal + self.noise(self.n_crack, dt_s)
        settlement = self.settlement + self.settle_per_day * days + self.noise(self.n_settle, dt_s)
        vibration = (0.08 + 0.7 * self.env.traffic(moment)) * math.exp(self.rng.gauss(0, 0.35))
        if "building_tilt" in active:
            progress, _ = active["building_tilt"]
            grow = progress * progress
            tilt_x += TILT_EXTRA_DEG * grow * self.lean[0]
            tilt_y += TILT_EXTRA_DEG * grow * self.lean[1]
            crack += CRACK_EXTRA_MM * grow
            settlement += SETTLEMENT_EXTRA_MM * grow
        return {"tilt_x": tilt_x, "tilt_y": tilt_y, "crack_width": max(0.0, crack), "settlement": settlement,
                "vibration": vibration}
