"""``gulou report daily|month|year|push``: the regulatory reports (flags only; the work is in gulou.app.report)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from gulou.app.report import ReportError, make_report, push_daily, summary_lines, write_series
from gulou.cli.common import (
    echo_json,
    json_option,
    load_settings,
    open_registry,
    registry_option,
    setup_logging,
    store_option,
)
from gulou.reports.model import ReportKind
from gulou.timeutil import CHINA_TZ

FILE = click.Path(path_type=Path, dir_okay=False)


def _outputs(command: Callable[..., None]) -> Callable[..., None]:
    """The flags every report command shares."""
    for option in reversed((
        json_option,
        click.option("--html", type=FILE, default=None, help="Write the report as one HTML page (charts embedded)."),
        click.option("--xlsx", type=FILE, default=None, help="Write the report as an xlsx workbook."),
        store_option,
        registry_option,
        click.option("--targets", type=FILE, default=None,
                     help="Plan targets file (env GULOU_REPORT__TARGETS; default: the shipped targets.yaml)."),
        click.option("--series", is_flag=True,
                     help="Also write the district daily AQI to InfluxDB (district_aqi; needs GULOU_INFLUX__URL)."),
    )):
        command = option(command)
    return command


def _run(kind: ReportKind, when: date, as_json: bool, html: Path | None, xlsx: Path | None, store: Path | None,
         registry: Path | None, targets: Path | None, series: bool) -> None:
    settings = load_settings(store=store, registry=registry)
    if targets is not None:
        settings = settings.model_copy(update={"report": settings.report.model_copy(update={"targets": targets})})
    setup_logging(settings.log_level)
    reg = open_registry(settings)
    try:
        report = make_report(settings, reg, kind, when, html=html, xlsx=xlsx,
                             progress=lambda line: click.echo(line, err=True))
    except ReportError as exc:
        raise click.ClickException(str(exc)) from None
    if series:
        _write_series(settings, report)
    if as_json:
        echo_json(report.to_json())
    elif html is None and xlsx is None:
        for line in summary_lines(report):
            click.echo(line)


def _write_series(settings: Any, report: Any) -> None:
    from gulou.sinks.influx import InfluxSink

    sink = InfluxSink.from_settings(settings) if settings.influx.url else None
    if sink is None:
        raise click.UsageError("--series needs InfluxDB: set GULOU_INFLUX__URL (and its bucket)")
    try:
        click.echo(f"wrote {write_series(sink, report)} district_aqi line(s)", err=True)
    finally:
        sink.close()


def _day(text: str | None) -> date:
    if text is None:
        return datetime.now(CHINA_TZ).date() - timedelta(days=1)
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r}: use YYYY-MM-DD") from None


@click.group()
def report() -> None:
    """Daily, monthly and yearly reports of the district's air, water, waste sorting, housing and plan targets."""


@report.command("daily")
@click.option("--date", "day", default=None, metavar="YYYY-MM-DD", help="The day (Beijing time; default yesterday).")
@_outputs
def report_daily(day: str | None, **flags: Any) -> None:
    """日报: the district's day — AQI, water classes, black odour, sorting, housing, targets."""
    _run("daily", _day(day), **flags)


@report.command("month")
@click.option("--month", default=None, metavar="YYYY-MM", help="The month (default: this month, to date).")
@_outputs
def report_month(month: str | None, **flags: Any) -> None:
    """月报: the month (to date while it runs) with the AQI calendar and the section-class table."""
    if month is None:
        first = datetime.now(CHINA_TZ).date().replace(day=1)
    else:
        try:
            first = date.fromisoformat(f"{month}-01")
        except ValueError:
            raise click.BadParameter(f"{month!r}: use YYYY-MM", param_hint="--month") from None
    _run("month", first, **flags)


@report.command("year")
@click.option("--year", type=click.IntRange(2000, 2100), default=None, help="The year (default: this year, to date).")
@_outputs
def report_year(year: int | None, **flags: Any) -> None:
    """年报: the year (year to date while it runs) with the monthly trend and the plan targets."""
    _run("year", date(year or datetime.now(CHINA_TZ).year, 1, 1), **flags)


@report.command("push")
@click.option("--date", "day", default=None, metavar="YYYY-MM-DD", help="The day (Beijing time; default yesterday).")
@store_option
@registry_option
@json_option
def report_push(day: str | None, store: Path | None, registry: Path | None, as_json: bool) -> None:
    """Push a day's report now: HTML into GULOU_REPORT__DIR, markdown to the DingTalk/WeCom robots."""
    settings = load_settings(store=store, registry=registry)
    setup_logging(settings.log_level)
    reg = open_registry(settings)
    try:
        result = asyncio.run(push_daily(settings, reg, _day(day)))
    except ReportError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        echo_json({"date": result.day.isoformat(), "html": str(result.html), "sent": result.sent,
                   "failed": result.failed})
        return
    sent = ", ".join(result.sent) or "no robot configured (GULOU_DINGTALK__WEBHOOK, GULOU_WECOM__WEBHOOK)"
    click.echo(f"{result.html}: sent to {sent}")
    for name, reason in result.failed.items():
        click.echo(f"{name}: {reason}", err=True)
    if result.failed:
        raise SystemExit(1)
