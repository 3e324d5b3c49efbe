"""The report as one self-contained HTML page (Jinja2 template, charts embedded as PNG data URIs)."""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from gulou.reports import charts, labels
from gulou.reports.district import aqi_colour
from gulou.reports.model import Report, SectionClass
from gulou.reports.stations import WaterBody


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("gulou.reports", "templates"),
                              autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True)


@dataclass
class _SectionRow:
    name: str
    river: str
    lake: bool
    drinking: bool
    target: str | None
    cells: dict[str, SectionClass] = field(default_factory=dict)


def _section_rows(sections: list[SectionClass]) -> list[tuple[str, _SectionRow]]:
    """Sections as rows with one cell per period (the coloured class table)."""
    rows: dict[str, _SectionRow] = {}
    for s in sections:
        body: WaterBody = s.water_body
        row = rows.setdefault(s.site, _SectionRow(s.name, s.river or "", body == "lake", s.drinking_source, s.target))
        row.cells[s.period] = s
    return list(rows.items())


def _target(report: Report, target_id: str) -> float | None:
    return next((t.target for t in report.targets if t.id == target_id), None)


def render_html(report: Report) -> str:
    """The report page: Chinese titles, Beijing time, AQI calendar, monthly trend and the coloured tables."""
    calendar_png = base64.b64encode(charts.aqi_calendar(report.calendar)).decode("ascii")
    trend_png = ""
    if report.period.kind != "daily" and report.monthly:
        trend_png = base64.b64encode(charts.monthly_trend(
            report.monthly, _target(report, "good_day_ratio"), _target(report, "pm25_annual_mean"))).decode("ascii")
    context: dict[str, Any] = {
        "r": report, "calendar_png": calendar_png, "trend_png": trend_png,
        "section_rows": _section_rows(report.water.sections), "pollutant_keys": labels.TABLE_POLLUTANTS,
        "pollutant_names": labels.POLLUTANT_NAMES, "water_names": labels.WATER_NAMES,
        "class_colours": labels.CLASS_COLOURS, "odour_colours": labels.ODOUR_COLOURS,
        "tier_words": labels.TIER_WORDS, "tier_colours": labels.TIER_COLOURS,
        "housing_metrics": labels.HOUSING_METRICS, "status_words": labels.STATUS_WORDS,
        "status_colours": labels.STATUS_COLOURS, "measured_by": labels.MEASURED_BY,
        "domain_words": labels.DOMAIN_WORDS, "beijing": labels.beijing, "percent": labels.percent,
        "number": labels.number, "pollutants": labels.pollutants, "target_figure": labels.target_figure,
        "text_on": labels.text_on, "aqi_colour": aqi_colour, "warning_text": labels.warning_text,
        "structure_words": labels.STRUCTURE_WORDS,
    }
    return _environment().get_template("report.html.j2").render(context)


def write_html(report: Report, path: Path) -> Path:
    """Write the report page to a file (UTF-8)."""
    path.write_text(render_html(report), encoding="utf-8")
    return path
