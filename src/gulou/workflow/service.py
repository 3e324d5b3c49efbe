"""The workflow at run time: engine events in; silences, routing, escalation, rate-limited robot messages out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from gulou.backoff import Backoff
from gulou.workflow import transitions
from gulou.workflow.digest import Batch, plan, wake_at
from gulou.workflow.dispatch import Dispatcher, DispatchError
from gulou.workflow.model import UNHANDLED, AlertRecord, Silence
from gulou.workflow.policy import Person, Policy
from gulou.workflow.render import RobotMessage, render
from gulou.workflow.store import WorkflowStore

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]


class Sender(Protocol):
    """A channel that can carry a rendered robot message (DingTalk, WeCom, webhook...)."""

    async def send_message(self, message: RobotMessage) -> None:
        """Deliver one message or raise."""


def wall_clock() -> datetime:
    """Now, aware UTC."""
    return datetime.now(UTC)


def event_time(payload: dict[str, Any]) -> datetime:
    """When the notified event happened (first seen, last seen, or resolved), for silence windows."""
    key = {"firing": "first_seen", "resolved": "resolved_at"}.get(str(payload.get("event")), "last_seen")
    return datetime.fromisoformat(str(payload.get(key) or payload["last_seen"]))


class WorkflowService:
    """Feeds engine transitions into the store and works the outbox, escalations and work orders."""

    def __init__(self, store: WorkflowStore, policy: Policy, senders: Mapping[str, Sender], *,
                 dispatcher: Dispatcher | None = None, base_url: str | None = None, clock: Clock = wall_clock,
                 wall: Clock = wall_clock, flush_s: float = 2.0) -> None:
        self.store, self.policy, self.senders = store, policy, dict(senders)
        self.dispatcher, self.base_url = dispatcher, base_url
        # ``clock`` times escalations (event time in replays); ``wall`` times sends for the robots' limits.
        self.clock, self.wall, self.flush_s = clock, wall, flush_s
        self._backoff: dict[str, Backoff] = {}
        self._wake = asyncio.Event()
        self._silences: list[Silence] = []
        self._silences_at: datetime | None = None
        self.stats = {"recorded": 0, "silenced": 0, "queued": 0, "messages": 0, "failures": 0, "escalated": 0,
                      "work_orders": 0}

    # -- intake -------------------------------------------------------------------------------------------
    def on_transition(self, payload: dict[str, Any]) -> AlertRecord:
        """Record one engine notification and queue what the routes say (unless closed or silenced)."""
        now = self.wall()
        alert, created = self.store.record_engine_event(payload, now)
        self.stats["recorded"] += 1
        event = str(payload["event"])
        if alert.status == "closed" or (event == "renotify" and alert.status not in UNHANDLED):
            return alert  # handled already: people asked not to be told again
        if alert.silence_id is not None and event != "firing":
            return alert
        silence = self._silence_for(alert, event_time(payload))
        if silence is not None:
            change = transitions.Change({"silence_id": silence.id}, "silenced", "system", silence.reason,
                                        {"silence": silence.id, "by": silence.created_by}, bumps_version=False)
            self.store.apply_system(alert, change)
            self.stats["silenced"] += 1
            return alert
        decision = self.policy.routing.route(alert)
        body = {**payload, "mention": decision.mention}
        channels = [c for c in decision.channels if c in self.senders]
        self.store.outbox.enqueue(channels, alert.id, event, alert.severity, alert.rule_id, body, now)
        self.stats["queued"] += len(channels)
        if decision.dispatch and created and event == "firing" and self.dispatcher is not None:
            self.store.work_orders.create(alert.id, now)
            self.stats["work_orders"] += 1
        self._wake.set()
        return alert

    def _silence_for(self, alert: AlertRecord, at: datetime) -> Silence | None:
        # Silences change rarely and bursts of engine events are many: read them at most once a second.
        wall = self.wall()
        if self._silences_at is None or (wall - self._silences_at).total_seconds() >= 1.0:
            self._silences = self.store.silences.find()
            self._silences_at = wall
        return next((s for s in self._silences if s.active(at) and s.scope.matches(alert)), None)

    # -- escalation ----------------------------------------------------------------------------------------
    def escalate(self) -> int:
        """Escalate firing alerts nobody reacted to within their policy's time; returns how many."""
        now, wall = self.clock(), self.wall()
        escalations = self.policy.escalations
        count = 0
        for alert in self.store.unhandled_firing(escalations.severities()):
            due = escalations.due(alert, now)
            if due is None:
                continue
            number, level = due
            person = self.policy.roster.on_duty(level.roster_level, now)
            notified = [person.id] if person else []
            change = transitions.escalate(alert, number, wall, notified)
            if change is None or not self.store.apply_system(alert, change, only_if_unhandled=True):
                continue
            count += 1
            body = {**alert.model_dump(mode="json"), "event": "escalated", "level": number,
                    "roster_level": level.roster_level, "notify": notified,
                    "waited_min": round((now - alert.first_seen).total_seconds() / 60)}
            self.store.outbox.enqueue([c for c in level.channels if c in self.senders], alert.id, "escalated",
                                      alert.severity, alert.rule_id, body, wall)
        self.stats["escalated"] += count
        if count:
            self._wake.set()
        return count

    # -- sending -------------------------------------------------------------------------------------------
    def _mentions(self, batch: Batch) -> tuple[list[Person], int | None]:
        roster = self.policy.roster
        escalated = [i for i in batch.items if i.event == "escalated"]
        if escalated:
            ids = dict.fromkeys(p for i in escalated for p in i.payload.get("notify", []))
            level = max(int(i.payload.get("level", 1)) for i in escalated)
            return [p for p in (roster.person(i) for i in ids) if p is not None], level
        if any(i.payload.get("mention") for i in batch.items if i.event != "resolved"):
            person = roster.on_duty(1, self.clock())
            return ([person] if person else []), None
        return [], None

    async def flush(self) -> int:
        """Send what each channel's limit allows now; returns the number of messages sent."""
        sent_count = 0
        for channel in await asyncio.to_thread(self.store.outbox.channels):
            sender = self.senders.get(channel)
            if sender is None:
                continue
            limit = self.policy.routing.limit(channel)
            for batch in await asyncio.to_thread(self._plan, channel):
                mentions, level = self._mentions(batch)
                message = render(batch, max_lines=limit.max_lines, storm_threshold=limit.storm_threshold,
                                 base_url=self.base_url, mentions=mentions, level=level)
                ids = [i.id for i in batch.items]
                try:
                    await sender.send_message(message)
                except Exception as exc:  # a failing robot must not stop the others; its items wait
                    backoff = self._backoff.setdefault(channel, Backoff(limit.retry_s, 600.0))
                    retry = self.wall() + timedelta(seconds=backoff.next())
                    await asyncio.to_thread(self.store.outbox.deferred, ids, retry)
                    self.stats["failures"] += 1
                    log.warning("%s: message of %d alert(s) not sent (%s); retry after %s", channel, len(ids), exc,
                                retry.isoformat(timespec="seconds"))
                    break
                self._backoff.pop(channel, None)
                await asyncio.to_thread(self._record_sent, channel, batch, message)
                sent_count += 1
        self.stats["messages"] += sent_count
        return sent_count

    def _plan(self, channel: str) -> list[Batch]:
        now = self.wall()
        items = self.store.outbox.waiting(channel)
        limit = self.policy.routing.limit(channel)
        sent = self.store.outbox.sent_since(channel, now - timedelta(seconds=limit.window_s))
        return plan(items, sent, now, limit)

    def _record_sent(self, channel: str, batch: Batch, message: RobotMessage) -> None:
        self.store.outbox.sent(channel, batch.items, batch.kind, message.title, self.wall())

    async def dispatch_due(self) -> int:
        """Deliver pending work orders; returns how many the dispatch system took."""
        if self.dispatcher is None:
            return 0
        taken = 0
        for order in self.store.work_orders.due(self.wall()):
            alert = self.store.get(order.alert)
            try:
                await self.dispatcher.send(order, alert, self.wall())
            except DispatchError as exc:
                backoff = self._backoff.setdefault("dispatch", Backoff(5.0, 600.0))
                retry = self.wall() + timedelta(seconds=backoff.next())
                self.store.work_orders.failed_attempt(order.id, str(exc), retry, self.wall())
                log.warning("work order %s not taken (%s); retry after %s", order.id, exc, retry.isoformat())
                break
            self._backoff.pop("dispatch", None)
            self.store.work_orders.delivered(order.id, self.wall())
            taken += 1
        return taken

    # -- loop ----------------------------------------------------------------------------------------------
    def next_wake(self) -> float:
        """Seconds until something may be due (bounded by ``flush_s``)."""
        now = self.wall()
        soonest = now + timedelta(seconds=self.flush_s)
        for channel in self.store.outbox.channels():
            limit = self.policy.routing.limit(channel)
            items = self.store.outbox.waiting(channel)
            sent = self.store.outbox.sent_since(channel, now - timedelta(seconds=limit.window_s))
            soonest = min(soonest, wake_at(items, sent, now, limit))
        return max(0.05, (soonest - now).total_seconds())

    async def run_once(self) -> None:
        """One round: escalate, send, dispatch."""
        await asyncio.to_thread(self.escalate)
        await self.flush()
        await self.dispatch_due()

    async def run(self) -> None:
        """Work forever; wakes early when new notifications are queued."""
        while True:
            try:
                await self.run_once()
                wait = await asyncio.to_thread(self.next_wake)
            except Exception:  # the database may be briefly unavailable; keep going
                log.exception("workflow round failed")
                wait = self.flush_s
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
