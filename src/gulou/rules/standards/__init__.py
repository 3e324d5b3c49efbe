"""National standards as pure functions: AQI (HJ 633 / GB 3095), GB 3838 water class, black odour, buildings."""

from gulou.rules.standards.aqi import (
    POLLUTANTS,
    AqiResult,
    Mode,
    air_limit,
    aqi,
    iaqi,
    rule_set_for,
)
from gulou.rules.standards.black_odour import (
    LEVEL_WORDS,
    BlackOdourPointResult,
    BlackOdourResult,
    black_odour,
    black_odour_point,
)
from gulou.rules.standards.structure import (
    component_limit,
    rate_per_day,
    tier,
    tilt_limit,
    tilt_limit_sourced,
    tilt_ratio,
    tilt_tier,
)
from gulou.rules.standards.tables import StandardsDataError, set_data_dir
from gulou.rules.standards.validity import (
    ValidityResult,
    annual_mean,
    daily_mean,
    good_day_ratio,
    hourly_value,
    o3_8h_mean,
    o3_daily_max_8h,
)
from gulou.rules.standards.water import CLASS_ORDER, WaterClassResult, water_class
from gulou.timeutil import CHINA_TZ, china_date

__all__ = [
    "CHINA_TZ",
    "CLASS_ORDER",
    "LEVEL_WORDS",
    "POLLUTANTS",
    "AqiResult",
    "BlackOdourPointResult",
    "BlackOdourResult",
    "Mode",
    "StandardsDataError",
    "ValidityResult",
    "WaterClassResult",
    "air_limit",
    "annual_mean",
    "aqi",
    "black_odour",
    "black_odour_point",
    "china_date",
    "component_limit",
    "daily_mean",
    "good_day_ratio",
    "hourly_value",
    "iaqi",
    "o3_8h_mean",
    "o3_daily_max_8h",
    "rate_per_day",
    "rule_set_for",
    "set_data_dir",
    "tier",
    "tilt_limit",
    "tilt_limit_sourced",
    "tilt_ratio",
    "tilt_tier",
    "water_class",
]
