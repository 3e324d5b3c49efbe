"""Chinese words and display colours shared by the HTML and xlsx renderings."""

from __future__ import annotations

from datetime import datetime

from gulou.rules.standards import CHINA_TZ

POLLUTANT_NAMES: dict[str, str] = {
    "pm25": "PM2.5", "pm10": "PM10", "so2": "SO₂", "no2": "NO₂", "o3": "O₃(1h)", "o3_8h": "O₃(8h)", "co": "CO",
}
# Columns of the daily AQI tables, in reading order.
TABLE_POLLUTANTS: tuple[str, ...] = ("pm25", "pm10", "so2", "no2", "co", "o3", "o3_8h")
WATER_NAMES: dict[str, str] = {
    "ph": "pH", "do": "溶解氧", "codmn": "高锰酸盐指数", "cod": "化学需氧量", "bod5": "五日生化需氧量",
    "nh3n": "氨氮", "tp": "总磷", "tn": "总氮", "transparency": "透明度", "orp": "氧化还原电位",
}
TIER_WORDS: dict[str, str] = {"none": "正常", "yellow": "黄色预警", "orange": "橙色预警", "red": "红色预警"}
TIER_COLOURS: dict[str, str] = {"none": "#FFFFFF", "yellow": "#FFF566", "orange": "#FFA940", "red": "#FF4D4F"}
HOUSING_METRICS: dict[str, str] = {
    "tilt": "整体倾斜率", "crack_width": "裂缝宽度", "settlement_rate": "沉降速率", "vibration": "振动速度",
}
STATUS_WORDS: dict[str, str] = {"on_track": "进度正常", "at_risk": "有风险", "missed": "未完成", "no_data": "无数据"}
STATUS_COLOURS: dict[str, str] = {"on_track": "#B7EB8F", "at_risk": "#FFE58F", "missed": "#FFA39E",
                                  "no_data": "#E8E8E8"}
# Section class colours: the blue-green-yellow-red convention of Chinese water-quality maps (a display
# choice, not part of GB 3838).
CLASS_COLOURS: dict[str, str] = {"I": "#1677FF", "II": "#69B1FF", "III": "#52C41A", "IV": "#FADB14", "V": "#FA8C16",
                                 "劣V": "#F5222D"}
STRUCTURE_WORDS: dict[str, str] = {"concrete": "混凝土", "masonry": "砌体", "brick-wood": "砖木", "timber": "木结构"}
DOMAIN_WORDS: dict[str, str] = {"air": "空气", "water": "水质", "waste": "垃圾分类", "structure": "房屋安全"}
ODOUR_COLOURS: dict[str, str] = {"none": "#B7EB8F", "light": "#FFD591", "severe": "#FF7875"}
MEASURED_BY: dict[str, str] = {"sensors": "传感器", "district": "街道上报"}
INVALID = "#D9D9D9"


def pollutants(names: list[str]) -> str:
    """Primary pollutants in display form, joined with 、 (— when none)."""
    return "、".join(POLLUTANT_NAMES.get(n, n) for n in names) or "—"


def beijing(moment: datetime) -> str:
    """A moment as Beijing time for people: ``2026-06-02 10:00（北京时间）``."""
    return moment.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M") + "（北京时间）"


def percent(value: float | None, digits: int = 1) -> str:
    """A ratio as a percentage (— when missing)."""
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def number(value: float | None, digits: int = 1) -> str:
    """A number with fixed decimals (— when missing)."""
    return "—" if value is None else f"{value:.{digits}f}"


def target_figure(value: float | None, unit: str) -> str:
    """A target's figure in its unit."""
    if value is None:
        return "—"
    if unit == "ratio":
        return percent(value)
    if unit == "days":
        return f"{value:g} 天"
    return f"{value:g} µg/m³"


def warning_text(metric: str, value: float, limit: float, unit: str, tier: str) -> str:
    """One housing warning in words: quantity, value, control value and tier."""
    name = HOUSING_METRICS.get(metric, metric)
    if unit == "ratio":
        return f"{name} {value * 100:.2f}%（控制值 {limit * 100:g}%，{TIER_WORDS[tier]}）"
    return f"{name} {value:g} {unit}（控制值 {limit:g} {unit}，{TIER_WORDS[tier]}）"


def text_on(colour: str) -> str:
    """Black or white text, whichever reads better on a background colour."""
    red, green, blue = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return "#000000" if 0.299 * red + 0.587 * green + 0.114 * blue > 128 else "#FFFFFF"
