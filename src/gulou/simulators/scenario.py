"""Scenario files: scripted incidents at simulated offsets from the start, plus default fault rates."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gulou.devices.registry import Device, Registry
from gulou.simulators.model import FaultKind, parse_duration

IncidentKind = Literal["pm25_episode", "black_odour", "bin_overflow", "bin_fire", "lot_full", "building_tilt",
                       "device_silent"]
# Every device can go silent; the other kinds act on the types whose pattern lists them (Pattern.incidents).
EVERY_TYPE = "device_silent"


def incident_types(kind: str) -> tuple[str, ...]:
    """The device types an incident can act on; a site target expands to its devices of these types."""
    from gulou.devices.catalog import CATALOG
    from gulou.simulators.patterns import pattern_class  # patterns import this module through base

    if kind == EVERY_TYPE:
        return tuple(CATALOG)
    return tuple(name for name in CATALOG if kind in pattern_class(name).incidents)


class ScenarioError(ValueError):
    """A scenario file that does not validate; the message names the file and the field."""


class Incident(BaseModel):
    """One scripted incident: what happens, to which device/site/street, when and for how long."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: IncidentKind
    target: str = Field(min_length=1, description="device id, site id; for pm25_episode also a street or 'all'")
    at: float = Field(description="simulated offset from the start: seconds or 30m, 2h, 1h30m")
    duration: float = Field(description="how long the incident lasts before values return to normal")
    peak: float | None = Field(default=None, gt=0, le=1500, description="pm25_episode: PM2.5 plateau, µg/m³")

    @field_validator("at", "duration", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        if not isinstance(value, str | int | float):
            raise ValueError("expected seconds or a duration such as 2h")
        return parse_duration(value)

    @model_validator(mode="after")
    def _check(self) -> Incident:
        if self.duration <= 0:
            raise ValueError("duration must be positive")
        if self.peak is not None and self.kind != "pm25_episode":
            raise ValueError("peak applies to pm25_episode only")
        return self


class Scenario(BaseModel):
    """A named list of incidents and default fault rates (command-line rates override them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "custom"
    description: str = ""
    faults: dict[FaultKind, float] = Field(default_factory=dict)
    incidents: list[Incident] = Field(default_factory=list)
    source: str = "<memory>"

    @field_validator("faults")
    @classmethod
    def _rates(cls, value: dict[FaultKind, float]) -> dict[FaultKind, float]:
        for kind, rate in value.items():
            if not 0 <= rate <= 1:
                raise ValueError(f"rate of {kind} must lie in 0..1, got {rate}")
        if sum(value.values()) > 1:
            raise ValueError("fault rates add up to more than 1")
        return value


@dataclass(frozen=True)
class Scheduled:
    """An incident resolved to one device, with its window in simulated seconds from the start."""

    kind: str
    start_s: float
    end_s: float
    peak: float | None = None

    def progress(self, offset_s: float) -> float | None:
        """Fraction of the incident elapsed at ``offset_s`` (0..1), or ``None`` outside it."""
        if self.start_s <= offset_s < self.end_s:
            return (offset_s - self.start_s) / (self.end_s - self.start_s)
        return None


def shipped_scenarios() -> dict[str, Path]:
    """Scenario files shipped with the package, by name."""
    folder = resources.files("gulou.data").joinpath("scenarios")
    return {Path(str(p)).stem: Path(str(p)) for p in folder.iterdir() if str(p).endswith(".yaml")}


def load_scenario(name_or_path: str | Path | None) -> Scenario:
    """A shipped scenario by name (``incidents``, ``quiet``) or a YAML file; ``None`` means no incidents."""
    if name_or_path is None:
        return Scenario(name="quiet")
    shipped = shipped_scenarios()
    path = shipped.get(str(name_or_path)) or Path(name_or_path)
    if not path.is_file():
        raise ScenarioError(f"{name_or_path}: no such scenario file; shipped scenarios: {', '.join(sorted(shipped))}")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read scenario: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from exc
    return parse_scenario(doc, str(path))


def parse_scenario(doc: Any, source: str) -> Scenario:
    """Validate a parsed scenario document; errors read ``FILE: incidents[2].duration: problem``."""
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ScenarioError(f"{source}: expected a mapping with 'incidents' (and optionally 'faults')")
    try:
        return Scenario.model_validate({**doc, "source": source})
    except ValidationError as exc:
        problems = "; ".join(f"{_where(err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ScenarioError(f"{source}: {problems}") from None


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "scenario"


def schedule(scenario: Scenario, registry: Registry) -> dict[str, list[Scheduled]]:
    """Resolve every incident's target to devices; an unknown target is a ScenarioError naming the field."""
    out: dict[str, list[Scheduled]] = {}
    for i, incident in enumerate(scenario.incidents):
        devices = _targets(incident, registry)
        if not devices:
            wanted = " or ".join(incident_types(incident.kind))
            extra = ", a street name or 'all'" if incident.kind == "pm25_episode" else ""
            raise ScenarioError(
                f"{scenario.source}: incidents[{i}].target: {incident.target!r} matches no {wanted} device "
                f"(give a device id, a site id{extra}) in registry {registry.source}"
            )
        for device in devices:
            out.setdefault(device.id, []).append(
                Scheduled(incident.kind, incident.at, incident.at + incident.duration, incident.peak))
    return out


def _targets(incident: Incident, registry: Registry) -> list[Device]:
    types = incident_types(incident.kind)
    target = incident.target
    device = registry.get(target)
    if device is not None:
        return [device] if device.type in types else []
    if incident.kind == "pm25_episode" and target == "all":
        return [d for d in registry if d.type in types]
    return [d for d in registry if d.type in types and (d.site.id == target
                                                         or (incident.kind == "pm25_episode" and d.street == target))]
