"""The standards' data files: lazy cached loading (once per process) and exact decimal arithmetic."""

from __future__ import annotations

import functools
import logging
import math
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from gulou.rules.standards.schema import (
    WATER_CLASSES,
    BlackOdourTable,
    Column,
    Gb3095,
    Gb3838,
    Hj633,
    Method,
    OdourIndicator,
    RuleSet,
    Sourced,
    StructureTable,
    WaterIndicator,
)

__all__ = [
    "WATER_CLASSES",
    "BlackOdourTable",
    "Column",
    "Gb3095",
    "Gb3838",
    "Hj633",
    "Method",
    "OdourIndicator",
    "RuleSet",
    "Sourced",
    "StandardsDataError",
    "StructureTable",
    "WaterIndicator",
    "black_odour_table",
    "check_number",
    "exact",
    "gb3095",
    "gb3838",
    "hj633",
    "set_data_dir",
    "structure_table",
]

log = logging.getLogger(__name__)

_data_dir: Path | None = None


class StandardsDataError(ValueError):
    """A standards data file is missing or does not match its schema (the message names the file)."""


# ---- loading ----------------------------------------------------------------------------------------------

M = TypeVar("M", bound=BaseModel)


def set_data_dir(path: Path | None) -> None:
    """Read the standards files from this directory (files missing there come from the package); None resets."""
    global _data_dir
    _data_dir = path
    for loader in (hj633, gb3095, gb3838, black_odour_table, structure_table):
        loader.cache_clear()


def _load(name: str, model: type[M]) -> M:
    if _data_dir is not None and (_data_dir / name).is_file():
        where = str(_data_dir / name)
        text = (_data_dir / name).read_text(encoding="utf-8")
    else:
        ref = resources.files("gulou.data.standards").joinpath(name)
        where = f"gulou/data/standards/{name}"
        try:
            text = ref.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise StandardsDataError(f"{where}: standards data file missing") from None
    try:
        raw = yaml.safe_load(text)
        loaded = model.model_validate(raw)
    except yaml.YAMLError as exc:
        raise StandardsDataError(f"{where}: not valid YAML: {exc}") from None
    except ValidationError as exc:
        raise StandardsDataError(f"{where}: {exc}") from None
    log.debug("loaded standards data %s", where)
    return loaded


@functools.cache
def hj633() -> Hj633:
    """The HJ 633 breakpoint tables (loaded once)."""
    return _load("hj633.yaml", Hj633)


@functools.cache
def gb3095() -> Gb3095:
    """The GB 3095 rule sets, limits and validity minimums (loaded once)."""
    return _load("gb3095.yaml", Gb3095)


@functools.cache
def gb3838() -> Gb3838:
    """The GB 3838-2002 Table 1 limits (loaded once)."""
    return _load("gb3838.yaml", Gb3838)


@functools.cache
def black_odour_table() -> BlackOdourTable:
    """The black-odour bands and aggregation thresholds (loaded once)."""
    return _load("black_odour.yaml", BlackOdourTable)


@functools.cache
def structure_table() -> StructureTable:
    """The building tilt limits, warning tiers and component limits (loaded once)."""
    return _load("structure.yaml", StructureTable)


def exact(value: float) -> Fraction:
    """The decimal a float was written as (``0.1`` is 1/10), so boundaries compare and divide exactly."""
    return Fraction(repr(float(value)))


def check_number(name: str, value: float, *, allow_negative: bool = False) -> float:
    """A finite number (non-negative unless allowed), else ValueError naming the item."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name}: expected a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name}: value must be finite, got {value!r}")
    if number < 0 and not allow_negative:
        raise ValueError(f"{name}: value must not be negative, got {value!r}")
    return number
