"""The pattern boundary: a per-device model of readings in simulated time, and the shared environment."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from datetime import datetime
from typing import ClassVar

from gulou.devices.catalog import CATALOG
from gulou.devices.registry import Device
from gulou.simulators.model import bump, clamp, device_rng, local_hour
from gulou.simulators.scenario import Scheduled
from gulou.timeutil import CHINA_TZ

Values = dict[str, float | int | bool]
# Incidents in force for one device at one moment: kind → (progress 0..1, the scheduled incident).
Active = dict[str, tuple[float, Scheduled]]


class Environment:
    """City-wide conditions every pattern shares: weather episodes, season, temperature and traffic."""

    def __init__(self, seed: int) -> None:
        rng = device_rng(seed, "weather")
        # Three incommensurate multi-day waves give stagnant spells of a few days every week or two.
        self._waves = [(rng.uniform(3.2, 4.2), rng.uniform(0, 2 * math.pi), 0.5),
                       (rng.uniform(5.8, 7.0), rng.uniform(0, 2 * math.pi), 0.3),
                       (rng.uniform(10.0, 12.5), rng.uniform(0, 2 * math.pi), 0.2)]
        self._street: dict[str, float] = {}
        self._seed = seed

    def stagnation(self, moment: datetime) -> float:
        """0 (clean, windy) .. 1 (stagnant, episode weather), varying over days."""
        days = moment.timestamp() / 86400
        wave = sum(w * math.sin(2 * math.pi * days / period + phase) for period, phase, w in self._waves)
        return clamp(0.5 + 0.6 * wave, 0.0, 1.0)

    @staticmethod
    def season(moment: datetime) -> float:
        """+1 in mid-January (winter) .. −1 in mid-July (summer)."""
        doy = moment.astimezone(CHINA_TZ).timetuple().tm_yday
        return math.cos(2 * math.pi * (doy - 15) / 365.25)

    def air_temperature(self, moment: datetime) -> float:
        """Fuzhou air temperature: about 11 °C in January, 29 °C in July, warmest at 15:00."""
        return 20.0 - 8.5 * self.season(moment) + 4.0 * math.cos(2 * math.pi * (local_hour(moment) - 15) / 24)

    def humidity(self, moment: datetime) -> float:
        """Relative humidity, highest before dawn and in stagnant weather."""
        day = math.cos(2 * math.pi * (local_hour(moment) - 15) / 24)
        return clamp(74.0 - 12.0 * day + 8.0 * self.stagnation(moment) - 4.0 * self.season(moment), 20.0, 99.0)

    def water_temperature(self, moment: datetime) -> float:
        """River water temperature: lags the air, with a small daily swing."""
        return 21.0 - 7.0 * self.season(moment) + 0.8 * math.cos(2 * math.pi * (local_hour(moment) - 16) / 24)

    @staticmethod
    def weekend(moment: datetime) -> bool:
        """Saturday or Sunday in local time."""
        return moment.astimezone(CHINA_TZ).weekday() >= 5

    def traffic(self, moment: datetime) -> float:
        """Road traffic 0..~1.2 with the 08:00 and 18:30 rush peaks (flatter at weekends)."""
        h = local_hour(moment)
        if self.weekend(moment):
            return 0.15 + 0.55 * bump(h, 11.0, 3.5) + 0.45 * bump(h, 18.0, 2.5)
        return 0.12 + 0.3 * bump(h, 13.0, 4.0) + 0.85 * bump(h, 8.0, 1.1) + 0.8 * bump(h, 18.5, 1.3)

    def street_factor(self, street: str) -> float:
        """A fixed pollution factor per street (busier streets read higher)."""
        if street not in self._street:
            self._street[street] = device_rng(self._seed, "street", street).uniform(0.85, 1.2)
        return self._street[street]


class Noise:
    """Red noise (AR(1) in simulated time): successive readings drift rather than jump."""

    def __init__(self, sigma: float, tau_s: float) -> None:
        self.sigma = sigma
        self.tau_s = tau_s
        self.value = 0.0

    def step(self, rng_gauss: float, dt_s: float) -> float:
        """Advance by ``dt_s`` seconds using one standard normal draw; return the new value."""
        phi = math.exp(-dt_s / self.tau_s) if dt_s > 0 else 1.0
        self.value = phi * self.value + self.sigma * math.sqrt(max(0.0, 1 - phi * phi)) * rng_gauss
        return self.value


class Pattern(ABC):
    """How one device's readings evolve; subclasses hold the per-device state of one device type."""

    type_name: ClassVar[str]
    decimals: ClassVar[dict[str, int]] = {}
    # Scenario incident kinds ``sample`` reacts to (device_silent applies to every type and is not listed).
    incidents: ClassVar[tuple[str, ...]] = ()

    def __init__(self, device: Device, seed: int, env: Environment) -> None:
        self.device = device
        self.env = env
        self.rng = device_rng(seed, "device", device.id)
        self.battery = round(self.rng.uniform(55, 100), 1) if CATALOG[device.type].battery else None
        self.rssi = round(self.rng.uniform(-105, -60), 1)
        self._last_offset: float | None = None

    def reading(self, moment: datetime, offset_s: float, active: Active) -> Values:
        """The next reading at ``moment``: modelled, rounded and clamped to the catalog's ranges."""
        dt = self.device.interval_s if self._last_offset is None else offset_s - self._last_offset
        self._last_offset = offset_s
        raw = self.sample(moment, offset_s, dt, active)
        return self.finish(raw)

    def noise(self, n: Noise, dt_s: float) -> float:
        """Step an AR(1) noise process with this device's random stream."""
        return n.step(self.rng.gauss(0.0, 1.0), dt_s)

    @abstractmethod
    def sample(self, moment: datetime, offset_s: float, dt_s: float, active: Active) -> Values:
        """Model values (unrounded) for one report; ``dt_s`` is the time since the previous one."""

    def finish(self, raw: Values) -> Values:
        """Round floats and keep every value within the metric's physical range."""
        dtype = CATALOG[self.device.type]
        out: Values = {}
        for name, value in raw.items():
            metric = dtype.metric(name)
            if metric.kind == "bool":
                out[name] = bool(value)
                continue
            low = metric.minimum if metric.minimum is not None else -math.inf
            high = metric.maximum if metric.maximum is not None else math.inf
            limited = clamp(float(value), low, high)
            if metric.kind == "int":
                out[name] = int(limited)
            else:
                out[name] = float(round(limited, self.decimals.get(name, 2)))
        return out


def window(hour: float, start: float, end: float, edge: float) -> float:
    """≈1 between ``start`` and ``end`` o'clock with soft edges of about ``edge`` hours, else ≈0."""
    return 1 / (1 + math.exp(-(hour - start) / edge)) * 1 / (1 + math.exp(-(end - hour) / edge))


def envelope(progress: float, ramp: float = 0.15) -> float:
    """0 → 1 over the first ``ramp`` of an incident, 1 on the plateau, back to 0 over the last ``ramp``."""
    rise = clamp(progress / ramp, 0.0, 1.0)
    fall = clamp((1 - progress) / ramp, 0.0, 1.0)
    return min(rise * rise * (3 - 2 * rise), fall * fall * (3 - 2 * fall))
