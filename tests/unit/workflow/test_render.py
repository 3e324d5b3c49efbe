"""Robot messages: escaping of registry text, how a resolved alert ended, storms and digests count everything."""

from __future__ import annotations

import re
from datetime import timedelta

from gulou.workflow.digest import Batch
from gulou.workflow.policy import Person
from gulou.workflow.render import escape, render
from tests.workflow_data import T0, item


def test_markdown_and_mentions_in_names_are_neutralised() -> None:
    text = escape("**塔巷**[点我](http://x)<font color=red>@13800000000\n# 标题")
    assert "**" not in text.replace("\\*", "")
    assert "<" not in text and "@" not in text and "\n" not in text
    assert text.startswith(r"\*\*塔巷\*\*\[点我\](http://x)")


def test_single_firing_message_carries_value_limit_and_beijing_time() -> None:
    msg = render(Batch("single", (item(1, site_name="塔巷_30号*"),), False))
    assert r"塔巷\_30号\*" in msg.text and "数值：0.95，限值：0.9" in msg.text
    assert "05-06 09:00" in msg.text and msg.count == 1


def test_resolved_message_says_how_it_ended() -> None:
    ended = item(1, event="resolved", value=0.82, resolved_at=T0 + timedelta(minutes=75))
    msg = render(Batch("single", (ended,), False))
    assert "数值回到0.82" in msg.text and "持续1小时15分" in msg.text
    assert "超标倍数" not in msg.text


def test_storm_gives_the_count_streets_and_worst_cases() -> None:
    items = tuple(item(n, value=0.9 + n / 1000, exceedance=n / 100) for n in range(1, 41))
    msg = render(Batch("storm", items, False))
    assert "共40个设备" in msg.text and "鼓东街道40个" in msg.text
    assert msg.text.index("dev-040") < msg.text.index("dev-039")
    assert msg.count == 40


def test_digest_lists_or_counts_every_item() -> None:
    items = tuple(item(n, rule=f"rule-{n % 7}") for n in range(1, 31))
    msg = render(Batch("digest", items, False), max_lines=5, storm_threshold=10)
    listed = len(re.findall(r"^- #\d+", msg.text, flags=re.M))
    counted = sum(int(n) for n in re.findall(r"）(\d+)条", msg.text.split("另有")[1]))
    assert listed == 5 and listed + counted == 30
    assert msg.text.startswith("### 告警汇总：30条")


def test_escalation_mentions_the_person_on_duty() -> None:
    person = Person(id="duty-day", name="白班值班员", phone="13800000001")
    batch = Batch("escalation", (item(1, event="escalated", severity="critical"),), True)
    msg = render(batch, mentions=[person], level=2, base_url="http://gulou.local:8088/")
    assert "第2级" in msg.text and "白班值班员" in msg.text and msg.mentions == (person,)
    assert "[#1](http://gulou.local:8088/alerts/1)" in msg.text
