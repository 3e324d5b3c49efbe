"""Routing, escalation and the on-duty roster, read from data files (routes.yaml, escalation.yaml, roster.yaml)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gulou.timeutil import CHINA_TZ
from gulou.workflow.model import SEVERITIES, AlertRecord

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class PolicyError(ValueError):
    """A policy file that does not validate; the message names the file."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Match(_Model):
    """Which alerts a route takes: each list given must contain the alert's value."""

    severity: tuple[str, ...] = ()
    domain: tuple[str, ...] = ()
    street: tuple[str, ...] = ()
    rule: tuple[str, ...] = ()

    @field_validator("severity")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = set(value) - set(SEVERITIES)
        if unknown:
            raise ValueError(f"unknown severity {sorted(unknown)}; known: {', '.join(SEVERITIES)}")
        return value

    def matches(self, alert: AlertRecord) -> bool:
        """True when the alert passes every list given."""
        return all(not want or have in want for want, have in (
            (self.severity, alert.severity), (self.domain, alert.domain), (self.street, alert.street),
            (self.rule, alert.rule_id)))


class Route(_Model):
    """Alerts matching ``match`` go to ``channels``; ``dispatch`` raises a work order; ``mention`` @-s the duty."""

    name: str
    match: Match = Match()
    channels: tuple[str, ...] = ()
    dispatch: bool = False
    mention: bool = False


class ChannelLimit(_Model):
    """How much one channel (one robot) may be sent, and how waiting notifications are grouped."""

    per_minute: int = Field(default=20, ge=1)
    # The span ``per_minute`` counts over: a minute for the robots; shorter only to test the limiter quickly.
    window_s: float = Field(default=60.0, gt=0)
    # Non-urgent notifications wait this long for company, so alerts that arrive together make one digest.
    group_wait_s: float = Field(default=10.0, ge=0)
    # This many notifications of one rule at once are a storm: one message with the count and the worst.
    storm_threshold: int = Field(default=5, ge=2)
    # Part of each minute's allowance kept for high and critical notifications.
    urgent_reserve: int = Field(default=2, ge=0)
    max_lines: int = Field(default=15, ge=1)
    retry_s: float = Field(default=30.0, gt=0)


@dataclass(frozen=True)
class Decision:
    """Where one alert goes."""

    channels: tuple[str, ...]
    dispatch: bool
    mention: bool
    routes: tuple[str, ...]


class Routing(_Model):
    """Routes (all matching ones apply, their channels joined), the default route, and per-channel limits."""

    channels: dict[str, ChannelLimit] = {}
    routes: tuple[Route, ...] = ()
    default: Route = Route(name="default")

    def route(self, alert: AlertRecord) -> Decision:
        """The channels, dispatch and mention flags for an alert."""
        hits = [r for r in self.routes if r.match.matches(alert)] or [self.default]
        channels = tuple(dict.fromkeys(c for r in hits for c in r.channels))
        return Decision(channels, any(r.dispatch for r in hits), any(r.mention for r in hits),
                        tuple(r.name for r in hits))

    def limit(self, channel: str) -> ChannelLimit:
        """The channel's limits (default: 20 a minute)."""
        return self.channels.get(channel, ChannelLimit())


class EscalationLevel(_Model):
    """Not acknowledged after ``after_min`` minutes: notify the roster's ``roster_level`` on ``channels``."""

    after_min: float = Field(gt=0)
    roster_level: int = Field(ge=1)
    channels: tuple[str, ...] = ()


class EscalationPolicy(_Model):
    """The escalation ladder of some severities."""

    name: str
    severity: tuple[str, ...]
    levels: tuple[EscalationLevel, ...]

    @model_validator(mode="after")
    def _ordered(self) -> EscalationPolicy:
        times = [lv.after_min for lv in self.levels]
        if not times or times != sorted(set(times)):
            raise ValueError(f"policy {self.name!r}: levels need increasing after_min")
        return self


class Escalations(_Model):
    """All escalation policies; a severity belongs to at most one."""

    policies: tuple[EscalationPolicy, ...] = ()

    def severities(self) -> tuple[str, ...]:
        """Severities that escalate."""
        return tuple(s for p in self.policies for s in p.severity)

    def due(self, alert: AlertRecord, now: datetime) -> tuple[int, EscalationLevel] | None:
        """The highest level (1-based) now due for an unhandled alert and not yet reached, if any."""
        policy = next((p for p in self.policies if alert.severity in p.severity), None)
        if policy is None:
            return None
        waited_min = (now - alert.first_seen).total_seconds() / 60
        due = [(i + 1, lv) for i, lv in enumerate(policy.levels) if waited_min >= lv.after_min]
        if not due or due[-1][0] <= alert.escalation_level:
            return None
        return due[-1]


class Person(_Model):
    """Someone on the roster; DingTalk robots mention by phone, WeCom by user id or phone."""

    id: str
    name: str
    phone: str | None = None
    wecom_user_id: str | None = None
    teams: tuple[str, ...] = ()


class Shift(_Model):
    """A duty shift in Beijing time; ``end`` before ``start`` runs past midnight into the next day."""

    person: str
    days: tuple[Day, ...] = DAYS
    start: time = time(0, 0)
    end: time = time(0, 0)

    def covers(self, local: datetime) -> bool:
        """True when the shift covers this Beijing-time moment."""
        day, prev = DAYS[local.weekday()], DAYS[(local.weekday() - 1) % 7]
        now = local.time()
        if self.start < self.end:
            return day in self.days and self.start <= now < self.end
        # Overnight (or all day when start == end): the evening part today, the morning part from yesterday.
        return (day in self.days and now >= self.start) or (prev in self.days and now < self.end)


class DutyLevel(_Model):
    """One rung of the duty ladder (1: duty officer, 2: section chief, ...)."""

    level: int = Field(ge=1)
    title: str
    shifts: tuple[Shift, ...] = ()
    fallback: str


class Team(_Model):
    """A team alerts can be assigned to."""

    id: str
    name: str


class Roster(_Model):
    """People, teams and who is on duty at each level."""

    people: tuple[Person, ...] = ()
    teams: tuple[Team, ...] = ()
    duty: tuple[DutyLevel, ...] = ()

    @model_validator(mode="after")
    def _known_people(self) -> Roster:
        ids = {p.id for p in self.people}
        for level in self.duty:
            missing = ({s.person for s in level.shifts} | {level.fallback}) - ids
            if missing:
                raise ValueError(f"duty level {level.level}: unknown people {sorted(missing)}")
        return self

    def person(self, person_id: str) -> Person | None:
        """A person by id."""
        return next((p for p in self.people if p.id == person_id), None)

    def on_duty(self, level: int, at: datetime) -> Person | None:
        """Who is on duty at ``level`` at the moment ``at`` (the level's fallback outside every shift)."""
        rung = next((d for d in self.duty if d.level == level), None)
        if rung is None:
            return None
        local = at.astimezone(CHINA_TZ)
        shift = next((s for s in rung.shifts if s.covers(local)), None)
        return self.person(shift.person if shift else rung.fallback)


@dataclass(frozen=True)
class Policy:
    """The three policy files together."""

    routing: Routing
    escalations: Escalations
    roster: Roster

    def check(self) -> None:
        """Cross-file checks: escalation levels exist on the roster."""
        levels = {d.level for d in self.roster.duty}
        for p in self.escalations.policies:
            for lv in p.levels:
                if lv.roster_level not in levels:
                    raise PolicyError(f"escalation.yaml: policy {p.name!r} names roster level {lv.roster_level}, "
                                      f"roster.yaml has {sorted(levels)}")


def _load(model: type[_Model], path: Path | None, name: str) -> Any:
    if path is None:
        text = (resources.files("gulou.data") / name).read_text(encoding="utf-8")
        where = f"gulou/data/{name}"
    else:
        text, where = path.read_text(encoding="utf-8"), str(path)
    try:
        return model.model_validate(yaml.safe_load(text) or {})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise PolicyError(f"{where}: {problems}") from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"{where}: {exc}") from None


def load_policy(directory: Path | None = None) -> Policy:
    """The policy files from ``directory`` (each one missing there: the shipped one)."""
    def pick(name: str) -> Path | None:
        if directory is not None and (directory / name).exists():
            return directory / name
        return None

    policy = Policy(_load(Routing, pick("routes.yaml"), "routes.yaml"),
                    _load(Escalations, pick("escalation.yaml"), "escalation.yaml"),
                    _load(Roster, pick("roster.yaml"), "roster.yaml"))
    policy.check()
    return policy

