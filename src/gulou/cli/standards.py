"""``gulou standards``: AQI, water class and black-odour level computed from the national standards."""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

import click

from gulou.cli.common import echo_json, json_option
from gulou.rules.standards import (
    CHINA_TZ,
    LEVEL_WORDS,
    POLLUTANTS,
    StandardsDataError,
    aqi,
    black_odour,
    water_class,
)
from gulou.rules.standards.tables import hj633

NAMES: dict[str, str] = {"pm25": "PM2.5", "pm10": "PM10", "so2": "SO2", "no2": "NO2", "o3": "O3 1h",
                         "o3_8h": "O3 8h", "co": "CO", "so2_24h": "SO2 24h"}
INDICATOR_WORDS: dict[str, str] = {"ph": "pH", "do": "溶解氧", "codmn": "高锰酸盐指数", "cod": "化学需氧量",
                                   "bod5": "五日生化需氧量", "nh3n": "氨氮", "tp": "总磷", "tn": "总氮",
                                   "transparency": "透明度", "orp": "氧化还原电位"}


def parse_pairs(pairs: tuple[str, ...], allowed: tuple[str, ...] | None = None,
                negative_ok: tuple[str, ...] = ()) -> dict[str, float]:
    """NAME=VALUE arguments as a dict; a malformed, unknown, repeated or negative pair is a usage error."""
    if not pairs:
        raise click.UsageError("give at least one NAME=VALUE pair")
    values: dict[str, float] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name = name.strip().lower()
        if not sep or not name:
            raise click.BadParameter(f"{pair!r}: expected NAME=VALUE", param_hint="NAME=VALUE")
        try:
            value = float(text)
        except ValueError:
            raise click.BadParameter(f"{pair!r}: {text!r} is not a number", param_hint="NAME=VALUE") from None
        if not math.isfinite(value):
            raise click.BadParameter(f"{pair!r}: value must be finite", param_hint="NAME=VALUE")
        if allowed is not None and name not in allowed:
            raise click.BadParameter(f"{pair!r}: unknown name {name!r}; valid names: {', '.join(allowed)}",
                                     param_hint="NAME=VALUE")
        if value < 0 and name not in negative_ok:
            raise click.BadParameter(f"{pair!r}: value must not be negative", param_hint="NAME=VALUE")
        if name in values:
            raise click.BadParameter(f"{pair!r}: {name} given twice", param_hint="NAME=VALUE")
        values[name] = value
    return values


def parse_at(text: str | None) -> date | datetime:
    """``--at``: a date (YYYY-MM-DD) or an ISO datetime (with an offset or taken as China time); default now."""
    if text is None:
        return datetime.now(CHINA_TZ)
    try:
        return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected YYYY-MM-DD or an ISO datetime", param_hint="--at") from None


@click.group()
def standards() -> None:
    """Compute AQI (HJ 633), GB 3838 water class and black-odour level from values."""


@standards.command("aqi")
@click.option("--at", "at_text", metavar="DATE|DATETIME", default=None,
              help="Observation date or time; picks HJ 633-2012 or HJ 633-2026 (default: now, China time).")
@click.option("--mode", type=click.Choice(["hourly", "daily"]), default="hourly", show_default=True,
              help="hourly: real-time 1 h columns; daily: 24 h columns (o3 = daily max 1 h, o3_8h = max 8 h).")
@click.argument("pairs", nargs=-1, metavar="NAME=VALUE...")
@json_option
def aqi_command(at_text: str | None, mode: str, pairs: tuple[str, ...], as_json: bool) -> None:
    """AQI from concentrations: pm25 pm10 so2 no2 o3 o3_8h (µg/m³), co (mg/m³); hourly mode also so2_24h."""
    allowed = (*POLLUTANTS, "so2_24h") if mode == "hourly" else POLLUTANTS
    values = parse_pairs(pairs, allowed)
    at = parse_at(at_text)
    try:
        result = aqi(values, at, "daily" if mode == "daily" else "hourly")
    except (ValueError, StandardsDataError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        echo_json(result.model_dump(mode="json"))
        return
    click.echo(f"AQI {result.aqi}  {result.category}（{result.level}，{result.colour}）")
    primary = "、".join(NAMES[p] for p in result.primary_pollutants) or \
        f"无（AQI ≤ {hj633().primary_pollutant.above_aqi}）"
    click.echo(f"首要污染物：{primary}")
    click.echo("分指数 IAQI：" + "，".join(f"{NAMES[p]} {v}" for p, v in result.iaqi.items()))
    if result.exceeding_applicable:
        click.echo("超标污染物：" + ("、".join(NAMES[p] for p in result.exceeding) or "无"))
    else:
        click.echo("超标污染物：本标准不设此项")
    click.echo(f"标准：{result.standard}（{result.date.isoformat()}，{'日报' if mode == 'daily' else '实时报'}）")
    for note in result.notes:
        click.echo(f"注：{note}")


@standards.command("water-class")
@click.option("--target", default=None, metavar="I..V",
              help="Target class of the section (exceedance and meets_target).")
@click.option("--lake", is_flag=True, help="Lake or reservoir: lake TP column, TN sets the class.")
@click.argument("pairs", nargs=-1, metavar="NAME=VALUE...")
@json_option
def water_class_command(target: str | None, lake: bool, pairs: tuple[str, ...], as_json: bool) -> None:
    """GB 3838-2002 class from ph do codmn cod bod5 nh3n tp tn (mg/L); other station metrics are ignored."""
    values = parse_pairs(pairs, negative_ok=("orp", "temperature"))
    try:
        result = water_class(values, target=target, lake=lake)
    except (ValueError, StandardsDataError) as exc:
        raise click.ClickException(str(exc)) from None
    data: dict[str, Any] = {"class": result.klass, **result.model_dump(mode="json", exclude={"klass"})}
    if as_json:
        echo_json(data)
        return
    click.echo(f"水质类别：{result.klass} 类（{result.status}）  标准：{result.standard}")
    click.echo("定类指标：" + "、".join(INDICATOR_WORDS.get(n, n) for n in result.worst))
    click.echo("各指标类别：" + "，".join(f"{INDICATOR_WORDS.get(n, n)} {c}" for n, c in result.per_indicator.items()))
    if result.exceedance:
        click.echo(f"超标倍数（对 {result.exceedance_target} 类）：" + "，".join(
            f"{INDICATOR_WORDS.get(n, n)} {m:.2f}" for n, m in result.exceedance.items()))
    if result.meets_target is not None:
        click.echo(f"目标 {result.target} 类：" + ("达标" if result.meets_target else "不达标"))


@standards.command("black-odour")
@click.option("--depth-cm", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Water depth in cm (shallow water scales the transparency bounds: shallow_water in "
                   "black_odour.yaml).")
@click.argument("pairs", nargs=-1, metavar="NAME=VALUE...")
@json_option
def black_odour_command(depth_cm: float | None, pairs: tuple[str, ...], as_json: bool) -> None:
    """Black-odour level from transparency (cm), do (mg/L), orp (mV), nh3n (mg/L)."""
    values = parse_pairs(pairs, negative_ok=("orp", "temperature"))
    try:
        result = black_odour(values, depth_cm=depth_cm)
    except (ValueError, StandardsDataError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        echo_json(result.model_dump(mode="json"))
        return
    click.echo(f"黑臭等级：{LEVEL_WORDS[result.level]}")
    click.echo("各指标：" + "，".join(f"{INDICATOR_WORDS.get(n, n)} {LEVEL_WORDS[lv]}"
                                   for n, lv in result.indicators.items()))
    if result.transparency_bounds_cm is not None and depth_cm is not None:
        click.echo(f"透明度判定界限：{result.transparency_bounds_cm[0]:g} cm（水深 {depth_cm:g} cm）")
