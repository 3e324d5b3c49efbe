"""The daily push: yesterday's report to local DingTalk and WeCom robots over HTTP, the plan targets judged."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from pathlib import Path
from typing import Self

import pytest

from gulou.app.report import push_daily, run_daily_push
from gulou.channels.base import Channel, ChannelContext
from gulou.devices.registry import Registry
from gulou.rules.alerts import AlertTransition
from gulou.rules.model import load_rules
from gulou.rules.service import RulesService
from gulou.settings import Settings
from gulou.timeutil import CHINA_TZ
from tests.robots import Robot, robot_server
from tests.unit.reports import monthdata
from tests.waiting import wait_for_async

pytestmark = pytest.mark.integration


class Recorder(Channel):
    """Keeps every transition the rules service delivers."""

    name = "recorder"

    def __init__(self) -> None:
        self.received: list[AlertTransition] = []

    @classmethod
    def from_settings(cls, settings: Settings, context: ChannelContext) -> Self | None:
        """Not built from settings."""
        return None

    async def send(self, transition: AlertTransition) -> None:
        """Record one transition."""
        self.received.append(transition)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Registry]:
    registry = monthdata.registry()
    return monthdata.write_month(tmp_path_factory.mktemp("push") / "gulou.db", registry), registry


def _settings(store: Path, tmp_path: Path, dingtalk: Robot, wecom: Robot, **report: object) -> Settings:
    return Settings(store=store, dingtalk={"webhook": dingtalk.url}, wecom={"webhook": wecom.url},
                    report={"dir": tmp_path / "reports", "link_base": "https://reports.example/gulou", **report})


def test_push_sends_the_day_to_both_robots_and_raises_target_alerts(store: tuple[Path, Registry],
                                                                    tmp_path: Path) -> None:
    path, registry = store
    recorder = Recorder()
    with robot_server("dingtalk") as dingtalk, robot_server("wecom") as wecom:
        settings = _settings(path, tmp_path, dingtalk, wecom)
        service = RulesService(settings, registry, load_rules(), channels=[recorder])

        async def main() -> list[AlertTransition]:
            task = asyncio.create_task(service.run())
            result = await push_daily(settings, registry, date(2026, 5, 7), rules=service,
                                      now=datetime(2026, 5, 8, 8, 30, tzinfo=CHINA_TZ))
            assert result.sent == ["dingtalk", "wecom"] and result.failed == {}
            assert result.html.is_file() and result.html.parent == tmp_path / "reports"
            await wait_for_async(lambda: len(recorder.received) >= len(result.transitions), 10,
                                 "the target alerts delivered")
            service.stop()
            await task
            return result.transitions

        transitions = asyncio.run(main())
        texts = dingtalk.texts() + wecom.texts()
    assert len(texts) == 2 and not dingtalk.malformed and not wecom.malformed
    for text in texts:
        # 7 May: district PM2.5 170 µg/m³ → AQI 220, 重度污染, primary PM2.5; the link to the page.
        assert "全区 AQI：**220**（重度污染）" in text and "PM2.5" in text
        assert "https://reports.example/gulou/gulou-daily-2026-05-07.html" in text
    fired = {t.alert.device_id: t for t in transitions if t.event == "firing"}
    # Year to date on 8 May with data for May only: the good-day ratio is fine but a heavy day already
    # breaks "no heavy pollution days"; the alert names the target and its figures.
    assert "heavy_pollution_days" in fired
    heavy = fired["heavy_pollution_days"].alert
    assert heavy.rule_id == "plan-target-air" and heavy.site_name == "鼓楼区"
    assert heavy.message.startswith("规划目标「重污染天数」") and "目标≤ 0" in heavy.message
    assert {t.alert.alert_id for t in recorder.received} >= {t.alert.alert_id for t in transitions}


def test_the_push_runs_at_its_time(store: tuple[Path, Registry], tmp_path: Path) -> None:
    path, registry = store
    with robot_server("dingtalk") as dingtalk, robot_server("wecom") as wecom:
        settings = _settings(path, tmp_path, dingtalk, wecom, push_at="08:30")
        # A clock half a second before 08:30 on 8 May 2026 (Beijing), running at the real pace.
        offset = datetime(2026, 5, 8, 8, 29, 59, 500_000, tzinfo=CHINA_TZ) - datetime.now(CHINA_TZ)

        async def main() -> None:
            task = asyncio.create_task(run_daily_push(settings, registry,
                                                      clock=lambda: datetime.now(CHINA_TZ) + offset))
            try:
                await wait_for_async(lambda: bool(dingtalk.texts()) and bool(wecom.texts()), 60,
                                     "the 08:30 push at both robots")
            finally:
                task.cancel()

        asyncio.run(main())
    assert (tmp_path / "reports" / "gulou-daily-2026-05-07.html").is_file()
    assert len(dingtalk.texts()) == 1 and "5月7日" in dingtalk.texts()[0]
