"""Air-quality micro-station: the six AQI pollutants plus weather (FIWARE AirQualityObserved)."""

from collections.abc import Mapping
from typing import ClassVar

from gulou.devices.base import DeviceType, Metric, Value


class AirStation(DeviceType):
    """A roadside or park micro-station reporting hourly-rateable concentrations."""

    name: ClassVar[str] = "air_station"
    domain: ClassVar[str] = "air"
    description: ClassVar[str] = "Air-quality micro-station (PM2.5, PM10, SO2, NO2, O3, CO, weather)"
    default_interval_s: ClassVar[int] = 60
    metrics: ClassVar[tuple[Metric, ...]] = (
        Metric("pm25", "µg/m³", "Fine particulate matter PM2.5", minimum=0, maximum=2000, fiware="pm25"),
        Metric("pm10", "µg/m³", "Inhalable particulate matter PM10", minimum=0, maximum=3000, fiware="pm10"),
        Metric("so2", "µg/m³", "Sulphur dioxide", minimum=0, maximum=5000, fiware="so2"),
        Metric("no2", "µg/m³", "Nitrogen dioxide", minimum=0, maximum=5000, fiware="no2"),
        Metric("o3", "µg/m³", "Ozone, 1 h value", minimum=0, maximum=2000, fiware="o3"),
        Metric("co", "mg/m³", "Carbon monoxide", minimum=0, maximum=200, fiware="co"),
        Metric("temperature", "°C", "Air temperature", minimum=-40, maximum=60, fiware="temperature"),
        Metric("humidity", "%RH", "Relative humidity", minimum=0, maximum=100, fiware="relativeHumidity"),
    )
    site_kind: ClassVar[str] = "air_site"
    synthetic_share: ClassVar[float] = 0.09
    calm: ClassVar[Mapping[str, Value]] = {"pm25": 30.0, "pm10": 50.0, "so2": 8.0, "no2": 30.0, "o3": 80.0,
                                           "co": 0.6, "temperature": 22.0, "humidity": 60.0}
    simulator: ClassVar[str] = "gulou.simulators.air:AirPattern"
