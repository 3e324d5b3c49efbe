"""Robot messages (DingTalk/WeCom markdown) for single alerts, digests, storms and escalations."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gulou.timeutil import CHINA_TZ
from gulou.workflow.digest import Batch
from gulou.workflow.model import SEVERITY_RANK, QueuedItem
from gulou.workflow.policy import Person

SEVERITY_ZH = {"informational": "提示", "low": "低", "medium": "中", "high": "高", "critical": "严重"}
EVENT_ZH = {"firing": "告警", "renotify": "持续告警", "resolved": "已恢复", "escalated": "升级"}
# Only what can start markup in the middle of a line: our own text puts every name after a fixed prefix.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
# Angle brackets would open WeCom's <font> tags and '@' could read as a mention: use full-width forms.
_FULL_WIDTH = str.maketrans({"<": "＜", ">": "＞", "@": "＠", "\r": " ", "\n": " "})


def escape(text: Any) -> str:
    """Markdown-safe text from a name or message that came from the registry or a rule file."""
    return _MD_SPECIAL.sub(r"\\\1", str(text).translate(_FULL_WIDTH))


@dataclass(frozen=True)
class RobotMessage:
    """One message for a group robot: title, markdown body, who to @-mention, how many alerts it carries."""

    title: str
    text: str
    count: int
    urgent: bool
    kind: str
    mentions: tuple[Person, ...] = ()
    alert_ids: tuple[str, ...] = field(default=())


def num(value: Any) -> str:
    """A value for people: 4 significant digits, '-' when missing."""
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def clock(value: Any) -> str:
    """Beijing time ``MM-DD HH:MM`` of an ISO timestamp."""
    if not value:
        return "-"
    moment = datetime.fromisoformat(str(value)) if not isinstance(value, datetime) else value
    return moment.astimezone(CHINA_TZ).strftime("%m-%d %H:%M")


def duration(start: Any, end: Any) -> str:
    """How long between two ISO timestamps, as 1小时5分 / 12分."""
    if not start or not end:
        return "-"
    seconds = int((datetime.fromisoformat(str(end)) - datetime.fromisoformat(str(start))).total_seconds())
    hours, minutes = divmod(max(0, seconds) // 60, 60)
    return f"{hours}小时{minutes}分" if hours else f"{minutes}分"


def _sev(payload: dict[str, Any]) -> str:
    return SEVERITY_ZH.get(str(payload.get("severity")), str(payload.get("severity")))


def _link(item: QueuedItem, base_url: str | None) -> str:
    return f"[#{item.alert}]({base_url.rstrip('/')}/alerts/{item.alert})" if base_url else f"#{item.alert}"


def _where(p: dict[str, Any]) -> str:
    return f"{escape(p.get('street', ''))} {escape(p.get('site_name', ''))}（{escape(p.get('device_id', ''))}）"


def _line(item: QueuedItem, base_url: str | None) -> str:
    p = item.payload
    where = _where(p)
    if item.event == "resolved":
        return (f"- {_link(item, base_url)} 已恢复 {escape(p.get('rule_id'))} {where}，数值回到{num(p.get('value'))}，"
                f"持续{duration(p.get('first_seen'), p.get('resolved_at'))}")
    return (f"- {_link(item, base_url)} 【{_sev(p)}】{escape(p.get('message', ''))}，{where}，"
            f"数值{num(p.get('value'))}/限值{num(p.get('limit'))}，{clock(p.get('first_seen'))}起")


def _single(item: QueuedItem, base_url: str | None) -> tuple[str, list[str]]:
    p = item.payload
    event = EVENT_ZH.get(item.event, item.event)
    lines = [f"### {event}：{escape(p.get('message', ''))}",
             f"- 编号：{_link(item, base_url)}，规则：{escape(p.get('rule_id'))}（{_sev(p)}）",
             f"- 地点：{_where(p)}"]
    if item.event == "resolved":
        lines.append(f"- 结束：数值回到{num(p.get('value'))}（限值{num(p.get('limit'))}），"
                     f"持续{duration(p.get('first_seen'), p.get('resolved_at'))}，{clock(p.get('resolved_at'))}恢复")
    else:
        lines += [f"- 数值：{num(p.get('value'))}，限值：{num(p.get('limit'))}，超标倍数：{num(p.get('exceedance'))}",
                  f"- 依据：{escape(p.get('standard', ''))}",
                  f"- 首次：{clock(p.get('first_seen'))}，最近：{clock(p.get('last_seen'))}"]
    return f"[{event}] {p.get('message', '')}", lines


def _worst(items: Sequence[QueuedItem]) -> list[QueuedItem]:
    def badness(i: QueuedItem) -> float:
        exc = i.payload.get("exceedance")
        return float(exc) if isinstance(exc, int | float) else float("-inf")
    return sorted(items, key=lambda i: (-SEVERITY_RANK.get(i.severity, 0), -badness(i), i.id))


def _storm(items: Sequence[QueuedItem], worst: int, base_url: str | None) -> tuple[str, list[str]]:
    first = items[0]
    event = EVENT_ZH.get(first.event, first.event)
    streets = Counter(str(i.payload.get("street", "")) for i in items)
    title = f"[{event}] {first.rule_id} 共{len(items)}个设备"
    lines = [f"### {event}风暴：{escape(first.rule_id)}（{_sev(first.payload)}）共{len(items)}个设备",
             "- 街道：" + "，".join(f"{escape(s)}{n}个" for s, n in streets.most_common()),
             f"- 最严重的{min(worst, len(items))}个："]
    lines += [_line(i, base_url) for i in _worst(items)[:worst]]
    return title, lines


def _summary(items: Sequence[QueuedItem]) -> str:
    counts = Counter((i.rule_id, EVENT_ZH.get(i.event, i.event)) for i in items)
    return "，".join(f"{escape(rule)}（{event}）{n}条" for (rule, event), n in counts.most_common())


def render(batch: Batch, *, max_lines: int = 15, storm_threshold: int = 5, base_url: str | None = None,
           mentions: Sequence[Person] = (), level: int | None = None) -> RobotMessage:
    """The markdown message for one planned batch; every item is listed or counted in it."""
    items = list(batch.items)
    if batch.kind == "single":
        title, lines = _single(items[0], base_url)
    elif batch.kind == "storm":
        title, lines = _storm(items, max(1, min(5, max_lines)), base_url)
    else:
        severities = Counter(SEVERITY_ZH.get(i.severity, i.severity) for i in items)
        head = "升级" if batch.kind == "escalation" else "告警汇总"
        extra = f"（第{level}级，无人确认）" if level else ""
        title = f"[{head}] {len(items)}条"
        lines = [f"### {head}{extra}：{len(items)}条（" + "，".join(f"{s}{n}" for s, n in severities.items()) + "）"]
        groups: dict[tuple[str, str], list[QueuedItem]] = {}
        for item in items:
            groups.setdefault((item.rule_id, item.event), []).append(item)
        listed: list[QueuedItem] = []
        for group in groups.values():
            if len(group) >= storm_threshold:
                worst = _worst(group)[0]
                lines.append(f"- {escape(group[0].rule_id)}（{EVENT_ZH.get(group[0].event, group[0].event)}）"
                             f"{len(group)}个设备，最严重：{_line(worst, base_url)[2:]}")
            else:
                listed += group
        room = max(0, max_lines - (len(lines) - 1))
        lines += [_line(i, base_url) for i in _worst(listed)[:room]]
        if len(listed) > room:
            lines.append(f"- 另有{len(listed) - room}条：{_summary(_worst(listed)[room:])}")
    if mentions:
        lines.append("请 " + " ".join(f"{escape(p.name)}" for p in mentions) + " 处理")
    return RobotMessage(title=title[:60], text="\n".join(lines), count=len(items), urgent=batch.urgent,
                        kind=batch.kind, mentions=tuple(mentions),
                        alert_ids=tuple(str(i.payload.get("alert_id", i.alert)) for i in items))
