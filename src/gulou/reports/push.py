"""The daily report as a short markdown message for DingTalk / WeCom robots: key figures and a link."""

from __future__ import annotations

from gulou.reports import labels
from gulou.reports.model import Report

# Robot messages are read on phones: a handful of lines, the targets that need attention, then the link.
MAX_TARGET_LINES = 5


def report_markdown(report: Report, link: str | None = None) -> tuple[str, str]:
    """Title and markdown text of a report push (DingTalk and WeCom both render this subset of markdown)."""
    lines = [f"### {report.title}"]
    latest = next((d for d in reversed(report.district_daily_aqi) if d.valid), None)
    if latest is not None and latest.aqi is not None:
        primary = labels.pollutants(latest.primary_pollutants)
        lines.append(f"- 全区 AQI：**{latest.aqi}**（{latest.category}），首要污染物：{primary}"
                     f"（{latest.date.month}月{latest.date.day}日）")
    else:
        reasons = report.district_daily_aqi[-1].reasons if report.district_daily_aqi else ["无数据"]
        lines.append(f"- 全区 AQI：无效（{'；'.join(reasons)}）")
    if report.period.kind != "daily":
        ratio = labels.percent(report.good_day_ratio)
        lines.append(f"- 优良天数比例：{ratio}（{report.good_days}/{report.valid_days} 天），"
                     f"重污染 {report.heavy_pollution_days} 天")
    lines.append(f"- PM2.5：{labels.number(report.pm25_mean.value)} µg/m³"
                 f"{'' if report.pm25_mean.valid else '（数据不足：' + (report.pm25_mean.reason or '') + '）'}")
    water = report.water.compliance
    lines.append(f"- 水质断面达标率：{labels.percent(water.value)}（{water.meeting}/{water.evaluated}）")
    severe = [r.river for r in report.black_odour if r.level != "none"]
    if severe:
        lines.append(f"- 黑臭：{'、'.join(dict.fromkeys(severe))}")
    warned = [b for b in report.housing if b.tier != "none"]
    if warned:
        lines.append("- 房屋预警：" + "、".join(f"{b.name}（{labels.TIER_WORDS[b.tier]}）" for b in warned[:3])
                     + ("等" if len(warned) > 3 else ""))
    attention = [t for t in report.targets if t.status in ("at_risk", "missed")][:MAX_TARGET_LINES]
    for target in attention:
        lines.append(f"- 目标「{target.name}」：{labels.STATUS_WORDS[target.status]}，累计 "
                     f"{labels.target_figure(target.actual, target.unit)}，目标 "
                     f"{'≥' if target.kind == 'min' else '≤'} {labels.target_figure(target.target, target.unit)}")
    if report.indicative:
        lines.append("> 空气数据来自微站，仅供参考")
    lines.append(f"> 生成于 {labels.beijing(report.generated_at)}")
    if link:
        lines.append(f"[查看完整报告]({link})")
    return report.title, "\n".join(lines)
