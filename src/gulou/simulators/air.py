"""Air quality: traffic rush peaks, multi-day weather episodes, correlated pollutants, afternoon ozone."""

from __future__ import annotations

import math
from datetime import datetime
from typing import ClassVar

from gulou.devices.registry import Device
from gulou.simulators.base import Active, Environment, Noise, Pattern, Values, envelope
from gulou.simulators.model import bump, local_hour

DEFAULT_EPISODE_PEAK = 210.0  # µg/m³ PM2.5: AQI "heavily polluted" (150–250 band)


class AirPattern(Pattern):
    """A roadside or park micro-station in Gulou (annual PM2.5 in the low 20s µg/m³)."""

    type_name: ClassVar[str] = "air_station"
    incidents: ClassVar[tuple[str, ...]] = ("pm25_episode",)
    decimals: ClassVar[dict[str, int]] = {"pm25": 1, "pm10": 1, "so2": 1, "no2": 1, "o3": 1, "co": 2,
                                          "temperature": 1, "humidity": 1}

    def __init__(self, device: Device, seed: int, env: Environment) -> None:
        super().__init__(device, seed, env)
        self.factor = env.street_factor(device.street) * self.rng.uniform(0.9, 1.1)
        self.coarse = self.rng.uniform(1.45, 1.85)  # PM10/PM2.5 ratio: dust and road wear vary by site
        self.traffic_weight = self.rng.uniform(0.6, 1.3)  # roadside stations see more of the rush
        self.n_pm = Noise(0.12, 3 * 3600)
        self.n_gas = Noise(0.15, 2 * 3600)
        self.n_fast = Noise(0.05, 600)
        self.n_o3 = Noise(0.1, 3 * 3600)
        self.n_temp = Noise(0.6, 3600)

    def sample(self, moment: datetime, offset_s: float, dt_s: float, active: Active) -> Values:
        """PM from weather × traffic; NO2/CO follow traffic; O3 peaks mid-afternoon in sunny weather."""
        h = local_hour(moment)
        w = self.env.stagnation(moment)
        season = self.env.season(moment)
        traffic = self.env.traffic(moment) * self.traffic_weight
        pm_noise = math.exp(self.noise(self.n_pm, dt_s) + self.noise(self.n_fast, dt_s))
        gas_noise = math.exp(self.noise(self.n_gas, dt_s))
        # Night-time inversions trap particles too: a small bump after midnight.
        mixing = 1.0 + 0.15 * bump(h, 2.0, 2.5)
        pm25 = (11.0 + 24.0 * w ** 2.0) * (1.0 + 0.2 * season) * (0.8 + 0.35 * traffic) * mixing
        pm25 *= self.factor * pm_noise
        pm10 = pm25 * self.coarse + 6.0 * traffic * pm_noise
        no2 = (10.0 + 34.0 * traffic + 16.0 * w) * self.factor * gas_noise
        co = (0.35 + 0.38 * traffic + 0.45 * w) * gas_noise
        so2 = (3.5 + 4.0 * w + 1.5 * traffic) * gas_noise
        sun = 1.0 - 0.35 * season  # stronger photochemistry in summer
        o3 = 16.0 + 95.0 * sun * (0.75 + 0.5 * w) * bump(h, 15.0, 2.8) * math.exp(self.noise(self.n_o3, dt_s))
        o3 = max(3.0, o3 - 0.25 * max(0.0, no2 - 30.0))  # NO titrates ozone near traffic
        temperature = self.env.air_temperature(moment) + self.noise(self.n_temp, dt_s)
        humidity = self.env.humidity(moment)
        if "pm25_episode" in active:
            progress, incident = active["pm25_episode"]
            e = envelope(progress)
            peak = (incident.peak or DEFAULT_EPISODE_PEAK) * math.exp(0.5 * self.n_fast.value)
            pm25 = pm25 * (1 - e) + peak * e
            pm10 = pm25 * self.coarse * (1 - 0.2 * e)  # episodes are secondary, fine aerosol
            no2 += 30.0 * e
            co += 1.1 * e
            so2 += 10.0 * e
            o3 *= 1 - 0.35 * e  # haze dims the sunlight
            humidity = min(98.0, humidity + 8.0 * e)
        return {"pm25": pm25, "pm10": pm10, "so2": so2, "no2": no2, "o3": o3, "co": co,
                "temperature": temperature, "humidity": humidity}
