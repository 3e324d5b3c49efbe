"""River water quality: DO and pH follow photosynthesis; nutrients plausible for the section's target class."""

from __future__ import annotations

import math
from datetime import datetime
from typing import ClassVar

from gulou.devices.registry import Device
from gulou.simulators.base import Active, Environment, Noise, Pattern, Values
from gulou.simulators.model import bump, local_hour, smoothstep

# Typical values per GB 3838 class (inner rivers sit in III–IV, the Min River in II–III).
BASELINE: dict[str, dict[str, float]] = {
    "I": {"do": 8.2, "codmn": 1.6, "nh3n": 0.1, "tp": 0.015, "turbidity": 4, "transparency": 160, "cond": 120},
    "II": {"do": 7.4, "codmn": 2.8, "nh3n": 0.3, "tp": 0.06, "turbidity": 9, "transparency": 110, "cond": 180},
    "III": {"do": 6.1, "codmn": 4.6, "nh3n": 0.7, "tp": 0.14, "turbidity": 16, "transparency": 70, "cond": 300},
    "IV": {"do": 4.8, "codmn": 6.8, "nh3n": 1.05, "tp": 0.21, "turbidity": 26, "transparency": 48, "cond": 420},
    "V": {"do": 3.2, "codmn": 10.5, "nh3n": 1.6, "tp": 0.3, "turbidity": 38, "transparency": 34, "cond": 520},
}

# Lakes and reservoirs hold far less phosphorus for the same class (GB 3838's lake TP column).
LAKE_TP: dict[str, float] = {"I": 0.007, "II": 0.018, "III": 0.035, "IV": 0.07, "V": 0.14}


def _saturation_ratio(temperature: float) -> float:
    """DO saturation relative to 20 °C (fresh water, sea level): warmer water holds less oxygen."""
    sat = 14.62 - 0.3898 * temperature + 0.006969 * temperature ** 2 - 0.00005897 * temperature ** 3
    return sat / 9.09


class WaterPattern(Pattern):
    """An automatic station on a river section; values scatter around the section's target class."""

    type_name: ClassVar[str] = "water_station"
    incidents: ClassVar[tuple[str, ...]] = ("black_odour",)
    decimals: ClassVar[dict[str, int]] = {"ph": 2, "do": 2, "codmn": 2, "nh3n": 3, "tp": 3, "turbidity": 1,
                                          "transparency": 1, "orp": 1, "temperature": 1, "conductivity": 0}

    def __init__(self, device: Device, seed: int, env: Environment) -> None:
        super().__init__(device, seed, env)
        base = dict(BASELINE[device.site.target_class or "IV"])
        if device.site.water_body == "lake":
            base["tp"] = LAKE_TP[device.site.target_class or "IV"]
        self.base = {k: v * self.rng.uniform(0.9, 1.1) for k, v in base.items()}
        self.amplitude = self.rng.uniform(0.9, 1.5) if base["do"] < 7 else self.rng.uniform(0.4, 0.8)
        self.temp_offset = self.rng.uniform(-0.6, 0.6)
        self.n_do = Noise(0.25, 2 * 3600)
        self.n_nutrient = Noise(0.12, 6 * 3600)
        self.n_turb = Noise(0.18, 4 * 3600)
        self.n_orp = Noise(15.0, 3600)
        self.n_small = Noise(0.03, 3600)

    def sample(self, moment: datetime, offset_s: float, dt_s: float, active: Active) -> Values:
        """One report; a black-odour incident overrides the four 黑臭 indicators, light then severe."""
        h = local_hour(moment)
        temperature = self.env.water_temperature(moment) + self.temp_offset + self.noise(self.n_small, dt_s) * 5
        # Algae produce oxygen by day and consume it by night: highest mid-afternoon, lowest before dawn.
        photo = math.cos(2 * math.pi * (h - 15.0) / 24)
        do = self.base["do"] * _saturation_ratio(temperature) + self.amplitude * photo + self.noise(self.n_do, dt_s)
        do = max(2.2, do)
        ph = 7.25 + 0.22 * photo + self.n_small.value * 3
        nutrient = math.exp(self.noise(self.n_nutrient, dt_s))
        morning = 1.0 + 0.12 * bump(h, 9.0, 2.0)  # domestic discharge peaks after breakfast
        codmn = self.base["codmn"] * nutrient
        nh3n = self.base["nh3n"] * nutrient * morning
        tp = self.base["tp"] * nutrient
        turb_factor = math.exp(self.noise(self.n_turb, dt_s))
        turbidity = self.base["turbidity"] * turb_factor
        transparency = self.base["transparency"] / turb_factor ** 0.6
        orp = 140.0 + 14.0 * do + self.noise(self.n_orp, dt_s)
        conductivity = self.base["cond"] * (1 + 0.5 * self.n_small.value)
        if "black_odour" in active:
            progress, _ = active["black_odour"]
            severe = progress >= 0.5
            lo = self._black(severe)
            # Sliding into light 黑臭 over the first tenth; severe from the half-way point.
            s = 1.0 if severe else smoothstep(progress / 0.1)
            do = do * (1 - s) + lo["do"] * s
            transparency = transparency * (1 - s) + lo["transparency"] * s
            orp = orp * (1 - s) + lo["orp"] * s
            nh3n = nh3n * (1 - s) + lo["nh3n"] * s
            codmn = codmn * (1 - s) + lo["codmn"] * s
            tp = tp * (1 - s) + lo["tp"] * s
            turbidity = turbidity * (1 - s) + lo["turbidity"] * s
            ph = ph * (1 - s) + 6.9 * s
        return {"ph": ph, "do": do, "codmn": codmn, "nh3n": nh3n, "tp": tp, "turbidity": turbidity,
                "transparency": transparency, "orp": orp, "temperature": temperature, "conductivity": conductivity}

    def _black(self, severe: bool) -> dict[str, float]:
        """Indicator levels inside the 城市黑臭水体 light or severe bands."""
        u = self.rng.uniform
        if severe:
            return {"do": u(0.03, 0.15), "transparency": u(4.0, 8.5), "orp": u(-280.0, -215.0),
                    "nh3n": u(16.0, 22.0), "codmn": u(18.0, 26.0), "tp": u(1.2, 2.0), "turbidity": u(90.0, 140.0)}
        return {"do": u(0.6, 1.5), "transparency": u(13.0, 21.0), "orp": u(-120.0, 20.0),
                "nh3n": u(9.0, 13.0), "codmn": u(11.0, 16.0), "tp": u(0.6, 1.0), "turbidity": u(55.0, 85.0)}
