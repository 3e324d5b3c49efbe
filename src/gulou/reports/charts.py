"""Report charts drawn with matplotlib (Agg, no global pyplot state): AQI calendar and monthly trend, as PNG."""

from __future__ import annotations

import calendar
import functools
import io
import logging
import math
from collections.abc import Sequence

from matplotlib import font_manager
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from gulou.reports.labels import INVALID, text_on
from gulou.reports.model import CalendarDay, MonthFigure
from gulou.rules.standards.tables import hj633

log = logging.getLogger(__name__)

# Debian's fonts-noto-cjk (Noto Sans CJK SC) first; WenQuanYi as a smaller alternative.
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei")
WEEKDAYS = ("一", "二", "三", "四", "五", "六", "日")
DPI = 110


@functools.cache
def cjk_font() -> str | None:
    """The first installed CJK font family, or None (Chinese text would then show as boxes)."""
    installed = {f.name for f in font_manager.fontManager.ttflist}
    for name in CJK_FONTS:
        if name in installed:
            return name
    log.warning("no CJK font found (install Debian's fonts-noto-cjk); chart labels will not show Chinese")
    return None


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    return buffer.getvalue()


def _font_kw() -> dict[str, str]:
    font = cjk_font()
    return {"fontfamily": font} if font else {}


def aqi_calendar(days: Sequence[CalendarDay]) -> bytes:
    """Calendar heatmap of the district daily AQI in the HJ 633 band colours, one block per month."""
    months = sorted({(d.date.year, d.date.month) for d in days})
    by_date = {d.date: d for d in days}
    cols = max(1, min(len(months), 4))
    rows = max(1, math.ceil(len(months) / cols))
    fig = _figure(max(3.2 * cols, 6.4), 2.9 * rows + 0.6)
    axes = fig.subplots(rows, cols, squeeze=False)
    kw = _font_kw()
    for index, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if index >= len(months):
            continue
        year, month = months[index]
        ax.set_xlim(0, 7)
        ax.set_ylim(-6.2, 1)
        ax.set_title(f"{year}年{month}月", fontsize=11, **kw)
        for col, word in enumerate(WEEKDAYS):
            ax.text(col + 0.5, 0.45, word, ha="center", va="center", fontsize=8, **kw)
        for week, row in enumerate(calendar.Calendar().monthdatescalendar(year, month)):
            for col, day in enumerate(row):
                if day.month != month:
                    continue
                cell = by_date.get(day)
                colour = cell.colour if cell else "#FFFFFF"
                ax.add_patch(Rectangle((col + 0.04, -week - 0.96), 0.92, 0.92, facecolor=colour,
                                       edgecolor="#BFBFBF", linewidth=0.5))
                label = f"{day.day}\n{cell.aqi}" if cell and cell.aqi is not None else f"{day.day}"
                ax.text(col + 0.5, -week - 0.5, label, ha="center", va="center", fontsize=6.5,
                        color=text_on(colour))
    bands = hj633().categories
    handles = [Patch(facecolor=c.colour, edgecolor="#BFBFBF", label=c.category) for c in bands]
    handles.append(Patch(facecolor=INVALID, edgecolor="#BFBFBF", label="无效"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8, frameon=False,
               prop={"family": kw["fontfamily"], "size": 8} if kw else None)
    return _png(fig)


def monthly_trend(monthly: Sequence[MonthFigure], good_target: float | None, pm25_target: float | None) -> bytes:
    """Monthly good-day ratio (bars) and PM2.5 mean (line), each against its target line."""
    fig = _figure(7.5, 4.8)
    top, bottom = fig.subplots(2, 1, sharex=True)
    kw = _font_kw()
    labels = [f"{int(m.month[5:])}月" for m in monthly]
    positions = list(range(len(monthly)))
    ratios = [(m.good_day_ratio or 0.0) * 100 for m in monthly]
    top.bar(positions, ratios, color="#52C41A", width=0.6, label="优良天数比例")
    for x, m in zip(positions, monthly, strict=True):
        if m.good_day_ratio is not None:
            top.text(x, ratios[x] + 1, f"{ratios[x]:.1f}", ha="center", va="bottom", fontsize=7)
    if good_target is not None:
        top.axhline(good_target * 100, color="#CF1322", linestyle="--", linewidth=1,
                    label=f"目标 {good_target * 100:.0f}%")
    top.set_ylim(0, 110)
    top.set_ylabel("优良天数比例（%）", **kw)
    top.legend(loc="lower right", fontsize=8, prop={"family": kw["fontfamily"], "size": 8} if kw else None)
    pm25 = [m.pm25_mean if m.pm25_mean is not None else math.nan for m in monthly]
    bottom.plot(positions, pm25, marker="o", color="#1677FF", label="PM2.5 月均浓度")
    if pm25_target is not None:
        bottom.axhline(pm25_target, color="#CF1322", linestyle="--", linewidth=1, label=f"目标 {pm25_target:g}")
    finite = [v for v in pm25 if not math.isnan(v)]
    bottom.set_ylim(0, max([*finite, pm25_target or 0, 10]) * 1.2)
    bottom.set_ylabel("PM2.5（µg/m³）", **kw)
    bottom.set_xticks(positions, labels, **kw)
    bottom.legend(loc="lower right", fontsize=8, prop={"family": kw["fontfamily"], "size": 8} if kw else None)
    return _png(fig)
