"""Pure planning of a channel's sends: rate limit, urgent first, grouping into digests and storm summaries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from gulou.workflow.model import SEVERITY_RANK, QueuedItem
from gulou.workflow.policy import ChannelLimit

WINDOW = timedelta(seconds=60)
URGENT_RANK = SEVERITY_RANK["high"]
Kind = Literal["single", "digest", "storm", "escalation"]


def is_urgent(item: QueuedItem) -> bool:
    """Escalations, and high or critical alerts that fire: they never wait behind the others."""
    if item.event == "escalated":
        return True
    return item.event in ("firing", "renotify") and SEVERITY_RANK.get(item.severity, 0) >= URGENT_RANK


def sent_in_window(sent: Sequence[datetime], now: datetime, window: timedelta = WINDOW) -> int:
    """Messages sent in the window (a minute) up to ``now``."""
    return sum(1 for at in sent if now - window < at <= now)


def next_slot(sent: Sequence[datetime], now: datetime, per_minute: int, window: timedelta = WINDOW) -> datetime:
    """The earliest moment another message may go out."""
    recent = sorted(at for at in sent if now - window < at <= now)
    if len(recent) < per_minute:
        return now
    return recent[len(recent) - per_minute] + window


@dataclass(frozen=True)
class Batch:
    """One message to send: the items it carries and what kind of message it is."""

    kind: Kind
    items: tuple[QueuedItem, ...]
    urgent: bool


def _kind(items: Sequence[QueuedItem], limit: ChannelLimit) -> Kind:
    if all(i.event == "escalated" for i in items):
        return "escalation"
    if len(items) == 1:
        return "single"
    if len({(i.rule_id, i.event) for i in items}) == 1 and len(items) >= limit.storm_threshold:
        return "storm"
    return "digest"


def _units(items: Sequence[QueuedItem], limit: ChannelLimit) -> list[list[QueuedItem]]:
    """Escalations together, then each storm (many of one rule and event), then everything else together."""
    if not items:
        return []
    escalations = [i for i in items if i.event == "escalated"]
    rest = [i for i in items if i.event != "escalated"]
    groups: dict[tuple[str, str], list[QueuedItem]] = {}
    for item in rest:
        groups.setdefault((item.rule_id, item.event), []).append(item)
    storms = [g for g in groups.values() if len(g) >= limit.storm_threshold]
    storms.sort(key=lambda g: -max(SEVERITY_RANK.get(i.severity, 0) for i in g))
    stormy = {id(i) for g in storms for i in g}
    others = [i for i in rest if id(i) not in stormy]
    return [u for u in (escalations, *storms, others) if u]


def _fit(units: list[list[QueuedItem]], slots: int, limit: ChannelLimit, urgent: bool) -> list[Batch]:
    """At most ``slots`` messages: when there are more units, the last message carries all that remain."""
    if slots <= 0 or not units:
        return []
    if len(units) > slots:
        units = [*units[:slots - 1], [i for u in units[slots - 1:] for i in u]]
    return [Batch(_kind(u, limit), tuple(sorted(u, key=_order)), urgent) for u in units]


def _order(item: QueuedItem) -> tuple[int, int]:
    return -SEVERITY_RANK.get(item.severity, 0), item.id


def plan(items: Sequence[QueuedItem], sent: Sequence[datetime], now: datetime, limit: ChannelLimit) -> list[Batch]:
    """What to send now: urgent items at once, the rest after ``group_wait_s``, within the per-minute limit.

    Nothing is dropped: what does not fit stays waiting for a later call. Non-urgent messages never take the
    last ``urgent_reserve`` slots of a minute, so a critical alert finds room even in a flood of minor ones.
    """
    ready = [i for i in items if i.next_attempt_at is None or i.next_attempt_at <= now]
    urgent = [i for i in ready if is_urgent(i)]
    normal = [i for i in ready if not is_urgent(i)]
    if normal and (now - min(i.created_at for i in normal)).total_seconds() < limit.group_wait_s:
        normal = []
    used = sent_in_window(sent, now, timedelta(seconds=limit.window_s))
    batches = _fit(_units(urgent, limit), limit.per_minute - used, limit, True)
    used += len(batches)
    batches += _fit(_units(normal, limit), limit.per_minute - limit.urgent_reserve - used, limit, False)
    return batches


def wake_at(items: Sequence[QueuedItem], sent: Sequence[datetime], now: datetime, limit: ChannelLimit) -> datetime:
    """When ``plan`` may next have something to send (for the flush loop to sleep until)."""
    candidates = [next_slot(sent, now, limit.per_minute, timedelta(seconds=limit.window_s))]
    for i in items:
        start = i.next_attempt_at or i.created_at
        if not is_urgent(i):
            start = max(start, i.created_at + timedelta(seconds=limit.group_wait_s))
        candidates.append(start)
    return max(now, min(candidates[1:], default=now), candidates[0])
