"""Smart waste bin at a collection point: one bin of one sorting category (FIWARE WasteContainer)."""

from typing import ClassVar

from gulou.devices.base import DeviceType, Domain, Metric


class SmartBin(DeviceType):
    """A bin with fill, weight, temperature, lid and odour sensors."""

    name: ClassVar[str] = "smart_bin"
    domain: ClassVar[Domain] = "waste"
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
