"""The report as an xlsx workbook (xlsxwriter): a summary sheet with the charts and one sheet per table."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import xlsxwriter

from gulou.reports import charts, labels
from gulou.reports.district import aqi_colour
from gulou.reports.model import Report

FONT = "Noto Sans CJK SC"
COLS = labels.TABLE_POLLUTANTS
COL_NAMES = [labels.POLLUTANT_NAMES[p] for p in COLS]
CAPTURE_HEADER = ["设备", "名称", "类别", "街道", "有效小时",
                  "应有小时", "有效小时率", "入库条数", "应有条数", "入库率"]
WATER_HEADER = ["断面", "河流/湖库", "水体", "水源地", "时段", "目标类别",
                "类别", "达标", "水质状况", "定类指标", "超标倍数", "样本数"]
TARGET_HEADER = ["目标", "年份", "目标值", "累计实际", "年末预计", "数据获取率",
                 "状态", "数据来源", "口径", "说明", "依据"]


class _Book:
    """A workbook with cached formats (xlsxwriter wants one format object per look)."""

    def __init__(self, path: Path) -> None:
        self.book = xlsxwriter.Workbook(str(path))
        self._formats: dict[tuple[tuple[str, Any], ...], Any] = {}

    def fmt(self, **props: Any) -> Any:
        key = tuple(sorted(props.items()))
        if key not in self._formats:
            self._formats[key] = self.book.add_format({"font_name": FONT, "font_size": 10, "border": 1, **props})
        return self._formats[key]

    def filled(self, colour: str) -> Any:
        return self.fmt(bg_color=colour, font_color=labels.text_on(colour), align="center")

    def sheet(self, name: str, header: Sequence[str], rows: Sequence[Sequence[Any]], widths: Sequence[int],
              colours: Sequence[dict[int, str]] | None = None) -> Any:
        """A sheet with a header row and data rows; ``colours`` gives per row the background of some cells."""
        ws = self.book.add_worksheet(name)
        for col, width in enumerate(widths):
            ws.set_column(col, col, width)
        ws.write_row(0, 0, list(header), self.fmt(bold=True, bg_color="#F0F5FF", align="center"))
        ws.freeze_panes(1, 0)
        for r, row in enumerate(rows, start=1):
            painted = colours[r - 1] if colours else {}
            for c, value in enumerate(row):
                ws.write(r, c, "—" if value is None else value,
                         self.filled(painted[c]) if c in painted else self.fmt())
        return ws

    def close(self) -> None:
        self.book.close()


def write_xlsx(report: Report, path: Path) -> Path:
    """Write the report workbook to ``path``."""
    book = _Book(path)
    try:
        _summary(book, report)
        _air(book, report)
        _water(book, report)
        _city(book, report)
        _targets(book, report)
    finally:
        book.close()
    return path


def _summary(book: _Book, r: Report) -> None:
    ws = book.book.add_worksheet("概要")
    ws.set_column(0, 0, 34)
    ws.set_column(1, 1, 40)
    title = book.book.add_format({"font_name": FONT, "font_size": 16, "bold": True})
    ws.write(0, 0, r.title, title)
    rows: list[tuple[str, Any]] = [
        ("统计时段", f"{labels.beijing(r.period.start)} 至 {labels.beijing(r.period.end)}"),
        ("数据截至", labels.beijing(r.period.data_until)),
        ("生成时间", labels.beijing(r.generated_at)),
        ("评价标准", "；".join(r.standard) or "—"),
        ("数据性质", "指示性（微站）" if r.indicative else "评价点位"),
        ("优良天数比例", f"{labels.percent(r.good_day_ratio)}（{r.good_days}/{r.valid_days} 有效天）"),
        ("重污染天数（AQI>200）", r.heavy_pollution_days),
        ("PM2.5 均值 µg/m³", f"{labels.number(r.pm25_mean.value)}（{r.pm25_mean.days} 天，需 {r.pm25_mean.needed} 天，"
                           f"{'有效' if r.pm25_mean.valid else '无效'}）"),
        ("O₃ 日最大8小时 均值 / 第90百分位", f"{labels.number(r.o3_8h.mean)} / {labels.number(r.o3_8h.p90)}"),
        ("断面达标率", labels.percent(r.water.compliance.value)),
        ("饮用水水源地达标率", labels.percent(r.water.drinking_sources.value)),
        ("内河断面达标率", labels.percent(r.water.inner_rivers.value)),
    ]
    for i, (name, value) in enumerate(rows, start=2):
        ws.write(i, 0, name, book.fmt(bold=True))
        ws.write(i, 1, value, book.fmt())
    ws.insert_image(len(rows) + 3, 0, "aqi_calendar.png",
                    {"image_data": io.BytesIO(charts.aqi_calendar(r.calendar)), "x_scale": 0.8, "y_scale": 0.8})
    if r.period.kind != "daily" and r.monthly:
        good = next((t.target for t in r.targets if t.id == "good_day_ratio"), None)
        pm25 = next((t.target for t in r.targets if t.id == "pm25_annual_mean"), None)
        ws.insert_image(2, 3, "monthly_trend.png",
                        {"image_data": io.BytesIO(charts.monthly_trend(r.monthly, good, pm25)), "x_scale": 0.8,
                         "y_scale": 0.8})


def _air(book: _Book, r: Report) -> None:
    header = ["日期", "AQI", "类别", "首要污染物", *COL_NAMES, "有效性"]
    rows = [[d.date.isoformat(), d.aqi, d.category, labels.pollutants(d.primary_pollutants),
             *(d.concentrations.get(p) for p in COLS), "有效" if d.valid else "；".join(d.reasons)]
            for d in r.district_daily_aqi]
    colours = [{1: aqi_colour(d.aqi)} for d in r.district_daily_aqi]
    book.sheet("全区日AQI", header, rows, [12, 7, 10, 12, *([9] * len(COLS)), 50], colours)
    station_rows = []
    station_colours = []
    for s in r.stations:
        for d in s.days:
            role = "指示性（微站）" if s.indicative else "评价点位"
            station_rows.append([s.name, s.device_id, role, d.date.isoformat(), d.aqi, d.category,
                                 *(d.concentrations.get(p) for p in COLS), "有效" if d.valid else "；".join(d.reasons)])
            station_colours.append({4: aqi_colour(d.aqi)})
    book.sheet("站点日AQI", ["站点", "设备", "性质", "日期", "AQI", "类别", *COL_NAMES, "有效性"],
               station_rows, [12, 10, 14, 12, 7, 10, *([9] * len(COLS)), 50], station_colours)
    book.sheet("数据获取率", CAPTURE_HEADER,
               [[c.device_id, c.name, labels.DOMAIN_WORDS.get(c.domain, c.domain), c.street, c.valid_hours,
                 c.expected_hours, c.rate, c.readings, c.expected_readings, c.readings_rate] for c in r.capture_rate],
               [10, 14, 10, 10, 9, 9, 10, 10, 10, 9])


def _water(book: _Book, r: Report) -> None:
    rows = []
    colours = []
    for s in r.water.sections:
        rows.append([s.name, s.river, "湖库" if s.water_body == "lake" else "河流", "是" if s.drinking_source else "否",
                     s.period, s.target, s.klass, "是" if s.meets_target else "否" if s.meets_target is False else None,
                     s.status, "、".join(labels.WATER_NAMES.get(k, k) for k in s.worst),
                     "；".join(f"{labels.WATER_NAMES.get(k, k)} {v:.2f}" for k, v in s.exceedance.items()) or None,
                     s.samples])
        colours.append({6: labels.CLASS_COLOURS[s.klass]} if s.klass else {})
    book.sheet("断面水质", WATER_HEADER, rows, [18, 10, 6, 6, 10, 8, 6, 6, 9, 20, 30, 7], colours)
    book.sheet("主要超标指标", ["指标", "超标断面·时段数", "最大超标倍数", "出现于", "时段"],
               [[labels.WATER_NAMES.get(i.indicator, i.indicator), i.count, i.max_multiple, i.where, i.period]
                for i in r.water.top_indicators], [14, 14, 12, 20, 10])
    book.sheet("黑臭水体", ["河道", "时段", "状态", "断面", "样本数"],
               [[river.river, river.period, river.level_word, s.name, s.samples]
                for river in r.black_odour for s in river.sections],
               [10, 10, 10, 20, 8],
               [{2: labels.ODOUR_COLOURS[river.level]} for river in r.black_odour for _ in river.sections])


def _city(book: _Book, r: Report) -> None:
    book.sheet("垃圾分类", ["街道", "投放点", "抽检次数", "正确次数", "准确率"],
               [[s.street, s.points, s.inspected, s.correct, s.rate] for s in r.waste_sorting], [12, 8, 10, 10, 9])
    book.sheet("房屋安全", ["房屋", "街道", "层数", "结构", "鉴定等级", "预警", "预警依据"],
               [[b.name, b.street, b.storeys, labels.STRUCTURE_WORDS.get(b.structure_type or "", b.structure_type),
                 b.grade, labels.TIER_WORDS[b.tier],
                 "；".join(labels.warning_text(w.metric, w.value, w.limit, w.unit, w.tier) for w in b.warnings) or None]
                for b in r.housing], [14, 10, 6, 8, 8, 10, 70],
               [{5: labels.TIER_COLOURS[b.tier]} for b in r.housing])


def _targets(book: _Book, r: Report) -> None:
    book.sheet("规划目标", TARGET_HEADER,
               [[t.name, t.year, ("≥ " if t.kind == "min" else "≤ ") + labels.target_figure(t.target, t.unit),
                 labels.target_figure(t.actual, t.unit), labels.target_figure(t.projected, t.unit), t.capture_rate,
                 labels.STATUS_WORDS[t.status], labels.MEASURED_BY[t.measured_by], t.basis, t.note, t.source]
                for t in r.targets], [20, 6, 12, 12, 12, 10, 9, 9, 50, 50, 40],
               [{6: labels.STATUS_COLOURS[t.status]} for t in r.targets])
