"""Water figures: section classes per month (GB 3838-2002) against targets, compliance, black odour per river."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal

import polars as pl

from gulou.devices.registry import Device, Site
from gulou.reports.model import IndicatorOver, OdourSection, RiverOdour, SectionClass, ShareFigure, WaterSummary
from gulou.reports.stations import water_body
from gulou.rules.standards import LEVEL_WORDS, black_odour_point, water_class
from gulou.rules.standards.black_odour import LEVELS
from gulou.rules.standards.tables import black_odour_table, gb3838

log = logging.getLogger(__name__)

TOP_INDICATORS = 3
# Means are shown (and classed) at 0.001 mg/L: float noise such as 0.20000000000000004 must not drop a class.
DECIMALS = 3


def water_metrics() -> tuple[str, ...]:
    """Every metric a water report reads: GB 3838 indicators and black-odour indicators."""
    return tuple(dict.fromkeys([*gb3838().indicators, *black_odour_table().indicators]))


def _round(value: float) -> float:
    return float(Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-DECIMALS), rounding=ROUND_HALF_UP))


def period_column(kind: str) -> pl.Expr:
    """The label a reading's period gets: its date for a daily report, ``YYYY-MM`` otherwise."""
    if kind == "daily":
        return pl.col("local").dt.strftime("%Y-%m-%d").alias("period")
    return pl.col("local").dt.strftime("%Y-%m").alias("period")


def section_classes(frame: pl.DataFrame, sections: Sequence[Site], kind: str) -> list[SectionClass]:
    """Each section's class per period from the mean of its samples, with target, status and exceedance."""
    rated = list(gb3838().indicators)
    present = [m for m in rated if m in frame.columns]
    means = frame.with_columns(period_column(kind)).group_by("site", "period").agg(
        [pl.col(m).mean() for m in present] + [pl.len().alias("samples")]).sort("site", "period")
    by_site: dict[str, list[dict[str, object]]] = {}
    for row in means.iter_rows(named=True):
        by_site.setdefault(str(row["site"]), []).append(row)
    out = []
    for site in sections:
        for row in by_site.get(site.id, []):
            values = {m: _round(float(v)) for m in present if isinstance(v := row[m], int | float)}
            out.append(_classed(site, str(row["period"]), values, int(str(row["samples"]))))
    return out


def _classed(site: Site, period: str, values: dict[str, float], samples: int) -> SectionClass:
    body = water_body(site)
    base = {"site": site.id, "name": site.name, "river": site.river, "water_body": body,
            "drinking_source": site.drinking_source, "period": period, "target": site.target_class,
            "means": values, "samples": samples}
    if not values:
        return SectionClass(**base, klass=None, meets_target=None, status=None, worst=[], exceedance={})
    result = water_class(values, target=site.target_class, water_body=body)
    return SectionClass(**base, klass=result.klass, meets_target=result.meets_target, status=result.status,
                        worst=result.worst, exceedance={k: round(v, 3) for k, v in result.exceedance.items()})


def share(items: Sequence[SectionClass]) -> ShareFigure:
    """Share of classed section-periods meeting their target."""
    judged = [s for s in items if s.meets_target is not None]
    meeting = sum(1 for s in judged if s.meets_target)
    return ShareFigure(value=round(meeting / len(judged), 4) if judged else None, meeting=meeting,
                       evaluated=len(judged))


def top_indicators(items: Sequence[SectionClass], limit: int = TOP_INDICATORS) -> list[IndicatorOver]:
    """Indicators over target in the most section-periods (ties: the larger multiple), with the largest multiple."""
    found: dict[str, IndicatorOver] = {}
    for item in items:
        for name, multiple in item.exceedance.items():
            seen = found.get(name)
            if seen is None:
                found[name] = IndicatorOver(indicator=name, count=1, max_multiple=multiple, where=item.name,
                                            period=item.period)
                continue
            seen.count += 1
            if multiple > seen.max_multiple:
                seen.max_multiple, seen.where, seen.period = multiple, item.name, item.period
    ranked = sorted(found.values(), key=lambda i: (-i.count, -i.max_multiple, i.indicator))
    return ranked[:limit]


def water_summary(frame: pl.DataFrame, sections: Sequence[Site], kind: str) -> WaterSummary:
    """Section classes and the compliance figures: all sections, drinking-water sources, inner rivers."""
    classes = section_classes(frame, sections, kind)
    drinking = [s for s in classes if s.drinking_source]
    inner = [s for s in classes if not s.drinking_source and s.water_body == "river"]
    return WaterSummary(sections=classes, periods=sorted({s.period for s in classes}), compliance=share(classes),
                        drinking_sources=share(drinking), inner_rivers=share(inner),
                        top_indicators=top_indicators(classes))


def black_odour_by_river(frame: pl.DataFrame, sections: Sequence[Site], kind: str) -> list[RiverOdour]:
    """Black-odour status per river and period: the worst section, each graded over its samples.

    A sample is an hourly mean in a daily report and a daily mean otherwise (a month then has ~30 samples).
    """
    indicators = [m for m in black_odour_table().indicators if m in frame.columns]
    if not indicators:
        return []
    unit = "1h" if kind == "daily" else "1d"
    samples = frame.with_columns(period_column(kind), pl.col("local").dt.truncate(unit).alias("slot")) \
        .group_by("site", "period", "slot").agg([pl.col(m).mean() for m in indicators]).sort("site", "period", "slot")
    grouped: dict[tuple[str, str], list[dict[str, float]]] = {}
    for row in samples.iter_rows(named=True):
        values = {m: _round(float(v)) for m in indicators if isinstance(v := row[m], int | float)}
        if values:
            grouped.setdefault((str(row["site"]), str(row["period"])), []).append(values)
    rivers: dict[tuple[str, str], list[OdourSection]] = {}
    for site in sections:
        for (site_id, period), graded in grouped.items():
            if site_id != site.id:
                continue
            point = black_odour_point(graded)
            rivers.setdefault((site.river or site.name, period), []).append(OdourSection(
                site=site.id, name=site.name, level=point.level, samples=point.samples,
                severe_share={k: round(v, 4) for k, v in point.severe_share.items()}))
    out = []
    for (river, period), graded_sections in sorted(rivers.items()):
        level = max((s.level for s in graded_sections), key=LEVELS.index)
        out.append(RiverOdour(river=river, period=period, level=level, level_word=LEVEL_WORDS[level],
                              sections=graded_sections))
    return out


def water_sections(devices: Sequence[Device]) -> list[Site]:
    """The distinct sites of water stations, in registry order."""
    return list({d.site.id: d.site for d in devices if d.domain == "water"}.values())
