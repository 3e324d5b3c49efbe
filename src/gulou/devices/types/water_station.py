"""River water-quality buoy or shore station (FIWARE WaterQualityObserved, with custom GB 3838 items)."""

import random
from collections.abc import Mapping
from typing import Any, ClassVar

from gulou.devices.base import DeviceType, Metric, Value


class WaterStation(DeviceType):
    """An automatic monitoring station on a river section."""

    name: ClassVar[str] = "water_station"
    domain: ClassVar[str] = "water"
    description: ClassVar[str] = "River water-quality station (pH, DO, CODMn, NH3-N, TP, transparency, ORP)"
    default_interval_s: ClassVar[int] = 300
    metrics: ClassVar[tuple[Metric, ...]] = (
        Metric("ph", "pH", "pH value", minimum=0, maximum=14, fiware="pH"),
        Metric("do", "mg/L", "Dissolved oxygen", minimum=0, maximum=25, fiware="O2"),
        Metric("codmn", "mg/L", "Permanganate index CODMn", minimum=0, maximum=200),
        Metric("nh3n", "mg/L", "Ammonia nitrogen NH3-N", minimum=0, maximum=200, fiware="NH3"),
        Metric("tp", "mg/L", "Total phosphorus", minimum=0, maximum=50),
        Metric("turbidity", "NTU", "Turbidity", minimum=0, maximum=4000, fiware="turbidity"),
        Metric("transparency", "cm", "Transparency (Secchi depth)", minimum=0, maximum=500),
        Metric("orp", "mV", "Oxidation-reduction potential", minimum=-1000, maximum=1000, fiware="orp"),
        Metric("temperature", "°C", "Water temperature", minimum=-5, maximum=45, fiware="temperature"),
        Metric("conductivity", "µS/cm", "Electrical conductivity", minimum=0, maximum=100000,
               fiware="conductivity"),
    )
    site_kind: ClassVar[str] = "river_section"
    site_fields: ClassVar[tuple[str, ...]] = ("river", "target_class")
    synthetic_share: ClassVar[float] = 0.07
    # TP 0.04 is within class III on the lake column too (≤ 0.05), so it is calm at 西湖 and 左海 as well.
    calm: ClassVar[Mapping[str, Value]] = {"ph": 7.2, "do": 6.5, "codmn": 3.5, "nh3n": 0.4, "tp": 0.04,
                                           "turbidity": 12.0, "transparency": 60.0, "orp": 180.0,
                                           "temperature": 21.0, "conductivity": 420.0}
    simulator: ClassVar[str] = "gulou.simulators.water:WaterPattern"

    def synthetic_site(self, rng: random.Random, n: int) -> dict[str, Any]:
        """A made-up river; inner rivers target IV twice as often as III."""
        return {"river": f"合成河{n % 20}", "target_class": rng.choice(("III", "IV", "IV"))}
