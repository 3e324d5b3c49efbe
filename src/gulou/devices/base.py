"""The device-type boundary: metric metadata and the payload model each type validates against."""

from __future__ import annotations

import random
from abc import ABC
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    create_model,
    model_validator,
)

MetricKind = Literal["float", "int", "bool"]
Value = float | int | bool
# What a value describes: an instant (real-time) or a period's mean starting at ``ts`` (HJ 212 2051/2061/2031).
Period = Literal["rtd", "minute", "hour", "day"]
DEFAULT_PERIOD: Period = "rtd"
# An HJ 212 data flag: one letter (N, F, M, S, D, C, T, B by HJ 212-2017 table 8; vendors add their own).
DataFlag = Annotated[str, StringConstraints(pattern=r"^[A-Z]$")]
# Payload fields that are not metric values.
NOT_METRICS = frozenset({"ts", "seq", "period", "flags", "backfill"})


def known_domain(value: str) -> str:
    """A domain some catalog type belongs to, else ValueError listing them."""
    from gulou.devices.catalog import domains  # the catalog imports this module

    if value not in domains():
        raise ValueError(f"unknown domain {value!r}; known: {', '.join(domains())}")
    return value


# The domains are those of the catalog's types (gulou.devices.catalog.domains): a new type may bring its own.
Domain = Annotated[str, AfterValidator(known_domain)]


def __getattr__(name: str) -> tuple[str, ...]:
    """``DOMAINS`` for modules that import it from here; it lives in the catalog (which imports this module)."""
    if name == "DOMAINS":
        from gulou.devices.catalog import DOMAINS

        return DOMAINS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class Metric:
    """One metric a device type reports: name on the wire, unit, physical range and meaning."""

    name: str
    unit: str
    description: str
    kind: MetricKind = "float"
    minimum: float | None = None
    maximum: float | None = None
    fiware: str | None = None

    def python_type(self) -> type:
        """The strict Python type pydantic checks the value against."""
        return {"float": float, "int": int, "bool": bool}[self.kind]


class PayloadBase(BaseModel):
    """Fields every telemetry payload shares; device types add their metrics as optional fields."""

    # Unknown fields are rejected (not ignored): a renamed metric in firmware would otherwise vanish
    # silently; the dead-letter store keeps the whole message so nothing is lost.
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)

    ts: AwareDatetime | int
    # Bounded above too: stores keep it as a signed 64-bit integer (SQLite INTEGER, line protocol i64).
    seq: int | None = Field(default=None, ge=0, le=2**63 - 1)
    # Optional station fields (HJ 212 gateway): the period a value covers (absent: real-time), and data sent
    # again from the logger's memory (RF=1). Per-metric ``flags`` are added per type (their keys are its metrics).
    period: Period | None = None
    backfill: bool | None = None

    def metrics(self) -> dict[str, float | int | bool]:
        """The metric values present in this payload."""
        # Straight from the instance dict: model_dump() is several times slower and this runs per message.
        return {k: v for k, v in self.__dict__.items() if v is not None and k not in NOT_METRICS}

    def data_flags(self) -> dict[str, str]:
        """Metric → data flag, for the metrics the payload flags."""
        flags = self.__dict__.get("flags")
        if flags is None:
            return {}
        return {k: v for k, v in flags.__dict__.items() if v is not None}

    @model_validator(mode="after")
    def _has_a_metric(self) -> PayloadBase:
        if not self.metrics():
            raise ValueError("payload carries no metric")
        return self


class DeviceType(ABC):
    """A kind of device and every fact about it other modules need. Subclasses only declare data.

    This class is the one home of per-type facts: the registry, the synthetic registries, the simulators,
    the benchmarks and the dashboards read them here instead of keeping tables keyed by type name.
    """

    name: ClassVar[str]
    domain: ClassVar[str]
    description: ClassVar[str]
    default_interval_s: ClassVar[int]
    metrics: ClassVar[tuple[Metric, ...]]
    # The kind of registry site the type is installed at, and the site attributes that kind needs.
    site_kind: ClassVar[str]
    site_fields: ClassVar[tuple[str, ...]] = ()
    # Registry device attributes every device of the type needs (a smart bin's waste category).
    device_fields: ClassVar[tuple[str, ...]] = ()
    # Battery-powered devices report a battery level with their status.
    battery: ClassVar[bool] = False
    # Weight of the type in a synthetic load-test registry, relative to the others' (the shipped deployment's mix).
    synthetic_share: ClassVar[float]
    # A plausible quiet reading (no rule fires on it) and the relative noise a benchmark may put on its floats.
    calm: ClassVar[Mapping[str, Value]]
    calm_noise: ClassVar[float] = 0.05
    # The simulator pattern that models the type, as "module:Class" (resolved by gulou.simulators.patterns).
    simulator: ClassVar[str]

    @cached_property
    def payload_model(self) -> type[PayloadBase]:
        """A pydantic model with one optional, range-checked field per metric."""
        fields: dict[str, Any] = {}
        for m in self.metrics:
            constraints: dict[str, Any] = {}
            if m.minimum is not None and m.kind != "bool":
                constraints["ge"] = m.minimum
            if m.maximum is not None and m.kind != "bool":
                constraints["le"] = m.maximum
            # Strict float still takes JSON integers; strict int refuses 3.0 and bool refuses 1.
            fields[m.name] = (m.python_type() | None, Field(default=None, description=m.description, **constraints))
        model_name = "".join(part.title() for part in self.name.split("_")) + "Payload"
        fields["flags"] = (self.flags_model | None, Field(default=None, description="HJ 212 data flag per metric"))
        return create_model(model_name, __base__=self.payload_base(), **fields)

    @cached_property
    def flags_model(self) -> type[BaseModel]:
        """The ``flags`` object: one optional data flag per metric of the type, nothing else."""
        fields: dict[str, Any] = {m.name: (DataFlag | None, None) for m in self.metrics}
        model_name = "".join(part.title() for part in self.name.split("_")) + "Flags"
        config = ConfigDict(extra="forbid", strict=True, frozen=True)
        return create_model(model_name, __config__=config, **fields)

    def payload_base(self) -> type[PayloadBase]:
        """Base model for the payload; override to add cross-field checks."""
        return PayloadBase

    def metric(self, name: str) -> Metric:
        """Metadata of one metric by name."""
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(f"{self.name} has no metric {name!r}")

    def synthetic_site(self, rng: random.Random, n: int) -> dict[str, Any]:
        """Attributes a synthetic site of this type's kind needs beyond id, name, street and position."""
        return {}

    def synthetic_device(self, rng: random.Random, n: int) -> dict[str, Any]:
        """Attributes a synthetic device row of this type needs beyond id, type, site and name."""
        return {}

    def describe(self) -> dict[str, Any]:
        """Catalog entry as plain data (for ``gulou devices catalog``)."""
        return {
            "type": self.name,
            "domain": self.domain,
            "description": self.description,
            "interval_s": self.default_interval_s,
            "metrics": [
                {
                    "name": m.name,
                    "unit": m.unit,
                    "kind": m.kind,
                    "min": m.minimum,
                    "max": m.maximum,
                    "description": m.description,
                    "fiware": m.fiware,
                }
                for m in self.metrics
            ],
        }


def epoch_ms_to_datetime(value: int) -> datetime:
    """Convert integer epoch milliseconds to an aware UTC datetime."""
    from datetime import UTC

    return datetime.fromtimestamp(value / 1000, tz=UTC)
