"""Waste: bins fill in the 四定 drop-off windows and are emptied by collection rounds; sorting inspections."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import ClassVar

from gulou.devices.registry import Device
from gulou.simulators.base import Active, Environment, Noise, Pattern, Values, window
from gulou.simulators.model import local_hour
from gulou.timeutil import CHINA_TZ

# Fuzhou's fixed drop-off times are 06:00–09:00 and 18:00–21:00; outside them bins are mostly locked.
OFF_HOURS = 0.04


def drop_off_intensity(hour: float) -> float:
    """Relative drop-off activity: 1 inside the windows, a trickle outside."""
    return max(OFF_HOURS, window(hour, 6.0, 9.0, 0.25), window(hour, 18.0, 21.0, 0.25))


# Area under drop_off_intensity over a day, so a daily demand can be spread over the hours.
_DAY_WEIGHT = sum(drop_off_intensity(m / 60) for m in range(0, 1440, 5)) * 5 / 60

CAPACITY_KG = {"厨余垃圾": 110.0, "其他垃圾": 55.0, "可回收物": 25.0, "有害垃圾": 12.0}
DAILY_FILL = {"厨余垃圾": (0.8, 1.4), "其他垃圾": (0.6, 1.1), "可回收物": (0.3, 0.75), "有害垃圾": (0.02, 0.08)}
# Collection rounds after each window (kitchen and residual waste) or once in the evening.
ROUNDS = {"厨余垃圾": (9.5, 21.5), "其他垃圾": (9.5, 21.5), "可回收物": (21.5,), "有害垃圾": (21.5,)}
FIRE_RISE_PER_MIN = 3.2  # °C per minute: ≥ 10 °C per 5 min is the fire signature
FIRE_MAX_RISE = 150.0


class BinPattern(Pattern):
    """One smart bin of one category at a collection point."""

    type_name: ClassVar[str] = "smart_bin"
    incidents: ClassVar[tuple[str, ...]] = ("bin_overflow", "bin_fire")
    decimals: ClassVar[dict[str, int]] = {"fill_level": 3, "weight": 1, "temperature": 1, "nh3": 3, "h2s": 4}

    def __init__(self, device: Device, seed: int, env: Environment) -> None:
        super().__init__(device, seed, env)
        category = device.category or "其他垃圾"
        self.food = category == "厨余垃圾"
        self.capacity_kg = CAPACITY_KG[category] * self.rng.uniform(0.9, 1.1)
        self.daily = self.rng.uniform(*DAILY_FILL[category])
        self.rounds = tuple(r + self.rng.uniform(0, 0.6) for r in ROUNDS[category])
        self.fill = self.rng.uniform(0.05, 0.3)
        self.n_temp = Noise(0.5, 1800)
        self._round_index: int | None = None
        self._overflowing = False

    def _rounds_done(self, moment: datetime) -> int:
        """Collection rounds since the epoch up to ``moment`` (a change means the crew came by)."""
        local = moment.astimezone(CHINA_TZ)
        days = local.toordinal()
        h = local_hour(moment)
        return days * len(self.rounds) + sum(1 for r in self.rounds if r <= h)

    def sample(self, moment: datetime, offset_s: float, dt_s: float, active: Active) -> Values:
        """Advance the fill by the drop-offs since the last report; apply collection and incidents."""
        h = local_hour(moment)
        demand = self.daily * (1.15 if self.env.weekend(moment) else 1.0)
        rate_per_h = demand / _DAY_WEIGHT * drop_off_intensity(h)
        self.fill += rate_per_h * dt_s / 3600 * math.exp(self.rng.gauss(0, 0.25))
        done = self._rounds_done(moment)
        overflow = "bin_overflow" in active
        if self._overflowing and not overflow:
            self.fill = self.rng.uniform(0.01, 0.04)  # the crew empties the overflowing bin when called
        elif self._round_index is not None and done != self._round_index and not overflow:
            self.fill = self.rng.uniform(0.01, 0.04)
        self._round_index = done
        self._overflowing = overflow
        if overflow:
            progress, _ = active["bin_overflow"]
            self.fill = max(self.fill, 0.95 + 0.05 * min(1.0, progress / 0.2))
        self.fill = min(self.fill, 1.0)
        ambient = self.env.air_temperature(moment)
        temperature = ambient + 1.5 + (3.0 if self.food else 0.6) * self.fill + self.noise(self.n_temp, dt_s)
        warm = max(0.5, 1 + (temperature - 20) / 30)
        nh3 = (0.06 + (0.85 if self.food else 0.25) * self.fill * warm) * math.exp(self.rng.gauss(0, 0.1))
        h2s = (0.003 + (0.04 if self.food else 0.01) * self.fill * warm) * math.exp(self.rng.gauss(0, 0.1))
        lid_open = overflow or self.rng.random() < (0.12 if drop_off_intensity(h) > 0.5 else 0.01)
        if "bin_fire" in active:
            progress, incident = active["bin_fire"]
            minutes = progress * (incident.end_s - incident.start_s) / 60
            temperature += min(FIRE_MAX_RISE, FIRE_RISE_PER_MIN * minutes)
            nh3 += 2.0 * min(1.0, minutes / 10)
            h2s += 0.2 * min(1.0, minutes / 10)
        weight = self.fill * self.capacity_kg * self.rng.uniform(0.95, 1.05)
        return {"fill_level": self.fill, "weight": weight, "temperature": temperature, "lid_open": lid_open,
                "nh3": nh3, "h2s": h2s}


class SortingPattern(Pattern):
    """A supervised 四定 point counting inspected drop-offs and the correctly sorted ones per report."""

    type_name: ClassVar[str] = "sorting_point"

    def __init__(self, device: Device, seed: int, env: Environment) -> None:
        super().__init__(device, seed, env)
        self.households_per_h = self.rng.uniform(70, 160)  # drop-offs per hour inside the windows
        self.correct_rate = self.rng.uniform(0.935, 0.975)

    def sample(self, moment: datetime, offset_s: float, dt_s: float, active: Active) -> Values:
        """Counts for the interval just ended (Poisson-like arrivals, binomial correctness)."""
        # Counts describe the interval just ended: place them at its middle.
        h = local_hour(moment - timedelta(seconds=dt_s / 2))
        mean = self.households_per_h * drop_off_intensity(h) * dt_s / 3600
        inspected = max(0, round(self.rng.gauss(mean, math.sqrt(mean) if mean > 0 else 0.0)))
        rate = min(0.995, max(0.85, self.rng.gauss(self.correct_rate, 0.01)))
        correct = sum(1 for _ in range(inspected) if self.rng.random() < rate)
        return {"inspected": inspected, "correct": correct}

