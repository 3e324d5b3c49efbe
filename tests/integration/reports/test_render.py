"""The reports open: HTML rendered by headless Chromium to a PNG, xlsx read back with openpyxl."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import openpyxl
import pytest
from PIL import Image

from gulou.devices.registry import Registry
from gulou.reports.build import build_report
from gulou.reports.html import write_html
from gulou.reports.model import Report, ReportKind
from gulou.reports.xlsx import write_xlsx
from tests.servers import require_binary
from tests.unit.reports import monthdata

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Registry]:
    registry = monthdata.registry()
    return monthdata.write_month(tmp_path_factory.mktemp("reports") / "gulou.db", registry), registry


def _report(store: tuple[Path, Registry], kind: ReportKind) -> Report:
    path, registry = store
    when = monthdata.MONTH_START.replace(day=7)
    return build_report(path, registry, kind, when, now=monthdata.REPORT_NOW)


def screenshot(page: Path, png: Path, profile: Path, height: int = 3000) -> None:
    """Render a local page with headless Chromium to a PNG (no network, throwaway profile)."""
    chromium = require_binary("chromium", "chromium")
    result = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-extensions", "--no-first-run", "--hide-scrollbars", f"--user-data-dir={profile}",
         f"--window-size=1280,{height}", f"--screenshot={png}", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"chromium failed ({result.returncode}): {result.stderr[-2000:]}"
    assert png.is_file(), f"chromium wrote no screenshot: {result.stderr[-2000:]}"


@pytest.mark.parametrize("kind", ["daily", "year"])
def test_html_renders_in_chromium(store: tuple[Path, Registry], tmp_path: Path, kind: ReportKind) -> None:
    report = _report(store, kind)
    page = write_html(report, tmp_path / f"{kind}.html")
    text = page.read_text(encoding="utf-8")
    assert report.title in text and "北京时间" in text and "data:image/png;base64," in text
    png = tmp_path / f"{kind}.png"
    # Tall enough for the water tables under a month of daily rows.
    height = 3000 if kind == "daily" else 8000
    screenshot(page, png, tmp_path / "profile", height)
    image = Image.open(png).convert("RGB")
    assert image.size == (1280, height)
    assert png.stat().st_size > 50_000, "screenshot is suspiciously small"
    colours = image.getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 200, "screenshot has almost no distinct colours: the page did not render"
    present = {rgb for _, rgb in colours}
    # The heavy day (7 May, AQI 220) is painted in the HJ 633 重度污染 colour #99004C, in the table and calendar.
    assert (0x99, 0x00, 0x4C) in present
    # The coloured section table: class V (#FA8C16) for 白马河 in May.
    if kind != "daily":
        assert (0xFA, 0x8C, 0x16) in present


def test_xlsx_reads_back(store: tuple[Path, Registry], tmp_path: Path) -> None:
    report = _report(store, "month")
    path = write_xlsx(report, tmp_path / "month.xlsx")
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["概要", "全区日AQI", "站点日AQI", "数据获取率", "断面水质", "主要超标指标", "黑臭水体",
                               "垃圾分类", "房屋安全", "规划目标"]
    summary = book["概要"]
    assert summary["A1"].value == "鼓楼区生态环境月报 2026年5月"
    assert summary["B8"].value == "89.7%（26/29 有效天）"
    with zipfile.ZipFile(path) as archive:  # the calendar and trend charts are embedded PNGs
        assert len([n for n in archive.namelist() if n.startswith("xl/media/") and n.endswith(".png")]) == 2
    days = book["全区日AQI"]
    assert [c.value for c in days[1]][:4] == ["日期", "AQI", "类别", "首要污染物"]
    assert (days["A8"].value, days["B8"].value, days["C8"].value) == ("2026-05-07", 220, "重度污染")
    assert days["B8"].fill.fgColor.rgb == "FF99004C"
    assert days["B26"].value == "—" and days["L26"].value.startswith("PM2.5")  # 25 May: invalid, with its reason
    capture = {row[0]: row for row in book["数据获取率"].iter_rows(min_row=2, values_only=True)}
    assert capture["aq-a"][4:7] == (711, 744, 0.9556)
    sections = {row[0]: row for row in book["断面水质"].iter_rows(min_row=2, values_only=True)}
    assert sections["东西河测试段"][6] == "劣V"
    targets = {row[0]: row for row in book["规划目标"].iter_rows(min_row=2, values_only=True)}
    assert targets["重污染天数"][6] == "未完成"
    assert targets["空气质量优良天数比例"][6] == "有风险"
