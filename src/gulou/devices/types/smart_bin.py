"""Smart waste bin at a collection point: one bin of one sorting category (FIWARE WasteContainer)."""

import random
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, get_args

from gulou.devices.base import DeviceType, Metric, Value

# The four sorting categories of Fuzhou's household waste; every bin holds one.
BinCategory = Literal["可回收物", "有害垃圾", "厨余垃圾", "其他垃圾"]
BIN_CATEGORIES: tuple[str, ...] = get_args(BinCategory)


class SmartBin(DeviceType):
    """A bin with fill, weight, temperature, lid and odour sensors."""

    name: ClassVar[str] = "smart_bin"
    domain: ClassVar[str] = "waste"
    description: ClassVar[str] = "Smart bin (fill level, weight, temperature, lid, NH3/H2S odour)"
    default_interval_s: ClassVar[int] = 300
    metrics: ClassVar[tuple[Metric, ...]] = (
        Metric("fill_level", "1", "Fill level as a fraction of capacity", minimum=0, maximum=1,
               fiware="fillingLevel"),
        Metric("weight", "kg", "Weight of the contents", minimum=0, maximum=2000, fiware="cargoWeight"),
        Metric("temperature", "°C", "Temperature inside the bin", minimum=-30, maximum=200,
               fiware="temperature"),
        Metric("lid_open", "bool", "Lid is open", kind="bool"),
        Metric("nh3", "mg/m³", "Ammonia at the bin", minimum=0, maximum=100),
        Metric("h2s", "mg/m³", "Hydrogen sulphide at the bin", minimum=0, maximum=100),
    )
    site_kind: ClassVar[str] = "collection_point"
    device_fields: ClassVar[tuple[str, ...]] = ("category",)
    battery: ClassVar[bool] = True
    synthetic_share: ClassVar[float] = 0.46
    calm: ClassVar[Mapping[str, Value]] = {"fill_level": 0.4, "weight": 40.0, "temperature": 22.0, "nh3": 0.3,
                                           "h2s": 0.01}
    simulator: ClassVar[str] = "gulou.simulators.waste:BinPattern"

    def synthetic_device(self, rng: random.Random, n: int) -> dict[str, Any]:
        """The categories in turn."""
        return {"category": BIN_CATEGORIES[n % len(BIN_CATEGORIES)]}
