"""The generated month in a real embedded store, and the month report built from it (once per module)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gulou.devices.registry import Registry
from gulou.reports.build import build_report
from gulou.reports.model import Report
from tests.unit.reports import monthdata


@pytest.fixture(scope="session")
def month_registry() -> Registry:
    """The small registry of the generated month."""
    return monthdata.registry()


@pytest.fixture(scope="session")
def month_store(tmp_path_factory: pytest.TempPathFactory, month_registry: Registry) -> Path:
    """A store file holding the generated month of May 2026."""
    return monthdata.write_month(tmp_path_factory.mktemp("reports") / "gulou.db", month_registry)


@pytest.fixture(scope="session")
def month_report(month_store: Path, month_registry: Registry) -> Report:
    """The May 2026 report, built on 2 June."""
    return build_report(month_store, month_registry, "month", monthdata.MONTH_START, now=monthdata.REPORT_NOW)
