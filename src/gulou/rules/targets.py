"""The plan's targets as rule subjects: what the app layer hands the engine for ``target`` rules (no reports import)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from gulou.devices.registry import Device, Site
from gulou.rules.alerts import Signal

# The district as the place of a target alert (鼓楼区人民政府, 鼓屏路; the street field reads 全区).
DISTRICT_SITE = Site.model_construct(id="district", kind="district", name="鼓楼区", street="全区",
                                     lat=26.0868, lon=119.2980)
Status = Literal["on_track", "at_risk", "missed", "no_data"]
STATUS_WORDS: dict[str, str] = {"on_track": "进度正常", "at_risk": "存在风险", "missed": "未完成", "no_data": "无数据"}


@dataclass(frozen=True)
class TargetVerdict:
    """One target's standing for its year: the figures as numbers and as people read them."""

    id: str
    name: str
    year: int
    status: Status
    kind: Literal["min", "max"]
    actual: float | None
    target: float
    projected: float | None = None
    actual_text: str = "-"
    target_text: str = "-"
    projected_text: str = "-"

    def subject(self, domain: str) -> Device:
        """The target as the alert's subject: its id and name in place of a device's, the district as the site."""
        return Device(id=self.id, type="plan_target", domain=domain,
                      name=self.name, street=DISTRICT_SITE.street, site=DISTRICT_SITE, lat=DISTRICT_SITE.lat,
                      lon=DISTRICT_SITE.lon, interval_s=86400)

    def summary(self) -> str:
        """Status and figures for the message: ``存在风险：累计 93.5%，年末预计 93.5%``."""
        return f"{STATUS_WORDS[self.status]}：累计 {self.actual_text}，年末预计 {self.projected_text}"

    def goal(self) -> str:
        """The target figure with its direction: ``≥ 97%``."""
        return f"{'≥' if self.kind == 'min' else '≤'} {self.target_text}"

    def signal(self, on: Collection[str], at: datetime) -> Signal:
        """Fire while the status is one of ``on``, clear once on track, hold without data."""
        verdict: Literal["fire", "clear", "hold"] = (
            "fire" if self.status in on else "clear" if self.status == "on_track" else "hold")
        return Signal(verdict, at, value=self.actual, limit=self.target, op="<" if self.kind == "min" else ">",
                      value_label=self.summary(), limit_label=self.goal())
