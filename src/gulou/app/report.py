"""``gulou report``: daily, monthly and yearly reports from the store, and the daily push to the robots.

The push runs at ``settings.report.push_at`` (Beijing time) inside ``gulou run`` or on its own: it builds
yesterday's report, writes its HTML into ``settings.report.dir``, writes the district daily AQI series when
InfluxDB is configured, sends the markdown summary through the DingTalk and WeCom channels and, with a rules
service at hand, judges the plan's targets (``target`` rules) so one at risk raises an alert.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path

from gulou.channels.base import ChannelContext, DeliveryError
from gulou.channels.dingtalk import DingTalkChannel
from gulou.channels.http import RobotChannel
from gulou.channels.wecom import WeComChannel
from gulou.devices.registry import Registry
from gulou.reports import labels
from gulou.reports.build import build_report
from gulou.reports.html import write_html
from gulou.reports.model import Report, ReportKind
from gulou.reports.push import report_markdown
from gulou.reports.series import district_lines
from gulou.reports.targets import TargetsError, load_targets
from gulou.rules.alerts import AlertTransition
from gulou.rules.service import RulesService
from gulou.rules.targets import TargetVerdict
from gulou.settings import Settings
from gulou.sinks.influx import InfluxSink
from gulou.timeutil import CHINA_TZ
from gulou.tsdb.writer import LineWriter

log = logging.getLogger(__name__)
Progress = Callable[[str], None]


class ReportError(Exception):
    """A report cannot be made: no store, a bad targets file, an unwritable output."""


def _quiet(_message: str) -> None:
    return None


def make_report(settings: Settings, registry: Registry, kind: ReportKind, when: date, *,
                html: Path | None = None, xlsx: Path | None = None, progress: Progress = _quiet,
                now: datetime | None = None) -> Report:
    """Build the report of ``kind`` for the period containing ``when`` and write the files asked for."""
    store = settings.store
    if not store.is_file():
        raise ReportError(f"no store at {store}: give --store (or GULOU_STORE) of a pipeline that has run "
                          "(gulou run, gulou demo)")
    try:
        targets = load_targets(settings.report.targets)
    except TargetsError as exc:
        raise ReportError(str(exc)) from None
    cache = settings.report.dir / "cache" if settings.report.cache else None
    progress(f"building the {kind} report for {when.isoformat()} from {store}")
    try:
        report = build_report(store, registry, kind, when, now=now, targets=targets, cache_dir=cache,
                              progress=progress)
    except ValueError as exc:  # a period that has not started yet
        raise ReportError(str(exc)) from None
    try:
        if html is not None:
            progress("drawing the charts and writing the HTML page")
            write_html(report, html)
            progress(f"wrote {html}")
        if xlsx is not None:
            from gulou.reports.xlsx import write_xlsx

            progress("writing the workbook")
            write_xlsx(report, xlsx)
            progress(f"wrote {xlsx}")
    except OSError as exc:
        raise ReportError(f"cannot write the report: {exc}") from None
    return report


def summary_lines(report: Report) -> list[str]:
    """The report in a few plain lines for the terminal."""
    lines = [report.title, f"数据截至 {labels.beijing(report.period.data_until)}"
             + ("（空气数据来自微站，仅供参考）" if report.indicative else "")]
    if report.period.kind == "year":
        for month in report.monthly:
            lines.append(f"  {month.month}  优良 {labels.percent(month.good_day_ratio)}（{month.good_days}/"
                         f"{month.valid_days} 天）  重污染 {month.heavy_pollution_days} 天  "
                         f"PM2.5 {labels.number(month.pm25_mean)} µg/m³")
    else:
        for day in report.district_daily_aqi:
            if day.valid:
                lines.append(f"  {day.date}  AQI {day.aqi:>3}  {day.category}  "
                             f"{labels.pollutants(day.primary_pollutants)}")
            else:
                lines.append(f"  {day.date}  无效：{'；'.join(day.reasons)}")
    lines.append(f"优良天数比例 {labels.percent(report.good_day_ratio)}（{report.good_days}/{report.valid_days} 天），"
                 f"重污染 {report.heavy_pollution_days} 天，PM2.5 {labels.number(report.pm25_mean.value)} µg/m³"
                 + ("" if report.pm25_mean.valid else f"（{report.pm25_mean.reason}）"))
    water = report.water.compliance
    lines.append(f"水质断面达标率 {labels.percent(water.value)}（{water.meeting}/{water.evaluated}）")
    for target in report.targets:
        lines.append(f"目标 {target.name}：{labels.STATUS_WORDS[target.status]}，累计 "
                     f"{labels.target_figure(target.actual, target.unit)}，目标 "
                     f"{'≥' if target.kind == 'min' else '≤'} {labels.target_figure(target.target, target.unit)}")
    return lines


def verdicts(report: Report) -> list[TargetVerdict]:
    """The report's targets as the rules engine judges them (``target`` rules)."""
    return [TargetVerdict(id=t.id, name=t.name, year=t.year, status=t.status, kind=t.kind, actual=t.actual,
                          target=t.target, projected=t.projected, actual_text=labels.target_figure(t.actual, t.unit),
                          target_text=labels.target_figure(t.target, t.unit),
                          projected_text=labels.target_figure(t.projected, t.unit))
            for t in report.targets]


def write_series(lines: LineWriter, report: Report) -> int:
    """Write the report's district days as the ``district_aqi`` series; returns the number of lines."""
    rows = district_lines(report.district_daily_aqi)
    if rows:
        lines.write_lines(rows)
    return len(rows)


def robots(settings: Settings) -> list[RobotChannel]:
    """The DingTalk and WeCom robots the settings switch on (they need nothing of a rules service's context)."""
    found: list[RobotChannel | None] = [DingTalkChannel.from_settings(settings, ChannelContext()),
                                        WeComChannel.from_settings(settings, ChannelContext())]
    return [r for r in found if r is not None]


@dataclass
class PushResult:
    """What one daily push did."""

    day: date
    html: Path
    sent: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    series_lines: int = 0
    transitions: list[AlertTransition] = field(default_factory=list)


async def push_daily(settings: Settings, registry: Registry, day: date, *,
                     channels: Sequence[RobotChannel] | None = None, influx: LineWriter | None = None,
                     rules: RulesService | None = None, now: datetime | None = None) -> PushResult:
    """Build ``day``'s report, write its HTML, write the district series, send the message, judge the targets."""
    html = settings.report.dir / f"gulou-daily-{day.isoformat()}.html"
    report = await asyncio.to_thread(make_report, settings, registry, "daily", day, html=html, now=now)
    result = PushResult(day=day, html=html)
    if influx is not None:
        try:
            result.series_lines = await asyncio.to_thread(write_series, influx, report)
        except Exception as exc:  # the push still goes out; the series is written again tomorrow
            log.warning("district_aqi series not written: %s", exc)
    link = f"{settings.report.link_base.rstrip('/')}/{html.name}" if settings.report.link_base else None
    title, text = report_markdown(report, link)
    for channel in robots(settings) if channels is None else channels:
        try:
            await channel.send_markdown(title, text)
            result.sent.append(channel.name)
        except DeliveryError as exc:
            result.failed[channel.name] = str(exc)
            log.warning("daily report push through %s failed: %s", channel.name, exc)
    if rules is not None:
        at = datetime.combine(day + timedelta(days=1), time(), CHINA_TZ)
        result.transitions = rules.judge_targets(verdicts(report), at)
    log.info("daily report %s pushed to %s (%d series lines, %d target alert changes)", day,
             ", ".join(result.sent) or "no robot", result.series_lines, len(result.transitions))
    return result


def next_push(push_at: str, now: datetime) -> datetime:
    """The next Beijing-time moment at ``HH:MM`` strictly after ``now``."""
    hour, minute = (int(p) for p in push_at.split(":"))
    local = now.astimezone(CHINA_TZ)
    moment = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return moment if moment > local else moment + timedelta(days=1)


async def run_daily_push(settings: Settings, registry: Registry, *, rules: RulesService | None = None,
                         clock: Callable[[], datetime] = lambda: datetime.now(CHINA_TZ)) -> None:
    """Push yesterday's report every day at ``settings.report.push_at`` until cancelled."""
    push_at = settings.report.push_at
    if push_at is None:
        raise ReportError("no push time: set GULOU_REPORT__PUSH_AT=HH:MM (Beijing time)")
    influx = InfluxSink.from_settings(settings) if settings.influx.url else None
    try:
        while True:
            moment = next_push(push_at, clock())
            log.info("next daily report push at %s", labels.beijing(moment))
            await asyncio.sleep(max(0.0, (moment - clock()).total_seconds()))
            day = moment.astimezone(CHINA_TZ).date() - timedelta(days=1)
            try:
                await push_daily(settings, registry, day, influx=influx, rules=rules)
            except ReportError as exc:
                log.error("daily report for %s not pushed: %s", day, exc)
    finally:
        if influx is not None:
            influx.close()
