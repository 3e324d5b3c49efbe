"""The district daily AQI as a time series (``district_aqi``) for Grafana's good-day ratio and AQI calendar panels."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from gulou.reports.district import HEAVY_ABOVE_AQI
from gulou.reports.model import DayAqi
from gulou.rules.standards.tables import gb3095
from gulou.timeutil import CHINA_TZ, to_ms
from gulou.tsdb.line_protocol import FieldValue, encode_line

MEASUREMENT = "district_aqi"


def district_lines(days: Sequence[DayAqi]) -> list[str]:
    """One line per district day, stamped at Beijing midnight.

    A valid day carries ``aqi``, ``good`` (1 when AQI ≤ 100, so the mean of ``good`` is the good-day ratio of
    the days with a figure), ``heavy`` (1 when AQI > 200), its category, primary pollutants and concentrations;
    an invalid day carries ``valid=false`` and its reasons only, so it counts in no ratio.
    """
    good_max = gb3095().validity["good_day_max_aqi"].value
    lines = []
    for day in days:
        ts_ms = to_ms(datetime.combine(day.date, datetime.min.time(), CHINA_TZ))
        fields: dict[str, FieldValue | None] = {"valid": day.valid}
        if day.valid and day.aqi is not None:
            fields.update({"aqi": day.aqi, "good": int(day.aqi <= good_max), "heavy": int(day.aqi > HEAVY_ABOVE_AQI),
                           "category": day.category, "primary": ",".join(day.primary_pollutants),
                           "standard": day.standard})
            fields.update({name: value for name, value in day.concentrations.items() if value is not None})
        else:
            fields["reasons"] = "；".join(day.reasons)
        lines.append(encode_line(MEASUREMENT, {"basis": "indicative" if day.indicative else "evaluation"},
                                 fields, ts_ms))
    return lines
