"""Station configuration: MN → device, system code, code → metric table with units, flags, secrets.

Everything the reference marks [M] or [U] is a per-station setting with a documented default: the O3
and turbidity codes, the PM unit (the 2017 table prints ng/m³; ambient stations send µg/m³), which
flags count as valid, how a missing flag is read, the CRC variants and length forms accepted.
Passwords and SM4 keys come from a secrets file kept outside the repository, never from this config.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gulou.devices.catalog import CATALOG
from gulou.hj212.crc import CRC_VARIANTS, CrcVariant
from gulou.timeutil import CHINA_TZ_NAME

StationKind = Literal["evaluation", "micro"]
StationType = Literal["air_station", "water_station"]
# The HJ 212 data flags (S17 table 8). N alone is valid by default: F, M, D, C, B are not measurements
# of the air or water, S (entered by hand) and T (above range) are [U] and stay configurable (§3.4).
FLAGS = frozenset("NFMSDCTB")
DEFAULT_VALID_FLAGS = frozenset("N")
MINUTE_INTERVALS = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30)  # the values CN 1064 may set

# Units as written in configuration → the contract's spelling.
_UNIT_ALIASES = {
    "ug/m3": "µg/m³", "μg/m³": "µg/m³", "µg/m3": "µg/m³", "ng/m3": "ng/m³", "mg/m3": "mg/m³",
    "us/cm": "µS/cm", "μs/cm": "µS/cm", "ms/cm": "mS/cm", "mg/l": "mg/L", "ntu": "NTU",
    "degc": "°C", "c": "°C", "%": "%RH", "hpa": "hPa", "kpa": "kPa", "ph": "pH",
}
# (sent unit, contract unit) → factor applied to the received number.
UNIT_FACTORS: dict[tuple[str, str], float] = {
    ("ng/m³", "µg/m³"): 1e-3,
    ("mg/m³", "µg/m³"): 1e3,
    ("µg/m³", "mg/m³"): 1e-3,
    ("mS/cm", "µS/cm"): 1e3,
    ("µg/L", "mg/L"): 1e-3,
}


def normal_unit(unit: str) -> str:
    """A unit in the contract's spelling (``ug/m3`` → ``µg/m³``)."""
    return _UNIT_ALIASES.get(unit.strip().lower(), unit.strip())


class CodeMap(BaseModel):
    """One pollutant code of a station: the contract metric it feeds and the unit the station sends."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str
    unit: str | None = Field(default=None, description="unit the station sends; default: the metric's")


# HJ 212-2017 appendix B / HJ 524 / HJ 525 codes for the contract's metrics (reference §4). O3 (a05024)
# and turbidity (w01003) are not in the 2017 tables and vary between platforms: override per station.
DEFAULT_CODES: dict[str, dict[str, CodeMap]] = {
    "air_station": {
        "a34004": CodeMap(metric="pm25"), "a34002": CodeMap(metric="pm10"), "a21026": CodeMap(metric="so2"),
        "a21004": CodeMap(metric="no2"), "a05024": CodeMap(metric="o3"), "a21005": CodeMap(metric="co"),
        "a01001": CodeMap(metric="temperature"), "a01002": CodeMap(metric="humidity"),
    },
    "water_station": {
        "w01001": CodeMap(metric="ph"), "w01009": CodeMap(metric="do"), "w01019": CodeMap(metric="codmn"),
        "w21003": CodeMap(metric="nh3n"), "w21011": CodeMap(metric="tp"), "w01003": CodeMap(metric="turbidity"),
        "w01010": CodeMap(metric="temperature"), "w01014": CodeMap(metric="conductivity"),
    },
}
DEFAULT_ST: dict[str, str] = {"air_station": "22", "water_station": "21"}


@dataclass(frozen=True, slots=True)
class Resolved:
    """A code resolved against the device type: metric, factor to the contract unit, physical range."""

    metric: str
    factor: float
    minimum: float | None
    maximum: float | None


class StationConfig(BaseModel):
    """One HJ 212 station (its data logger's MN) and the registry device its readings belong to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mn: str = Field(min_length=1, max_length=64, pattern=r"^[^;,&=\s]+$")
    device_id: str
    device_type: StationType
    kind: StationKind = "evaluation"
    st: str | None = Field(default=None, description="expected system code; default 22 air, 21 water")
    codes: dict[str, CodeMap | None] = Field(default_factory=dict, description="overrides; null drops a code")
    timezone: str = CHINA_TZ_NAME
    minute_interval_min: int = 10
    valid_flags: frozenset[str] = DEFAULT_VALID_FLAGS
    missing_flag: Literal["invalid", "N"] = "invalid"
    crc_variants: tuple[CrcVariant, ...] = CRC_VARIANTS
    accept_length_mismatch: bool = True
    strict_st: bool = False
    auth: Literal["password", "none"] = "password"
    time_sync: bool = True

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("minute_interval_min")
    @classmethod
    def _interval(cls, value: int) -> int:
        if value not in MINUTE_INTERVALS:
            raise ValueError(f"minute interval must be one of {MINUTE_INTERVALS}")
        return value

    @field_validator("valid_flags")
    @classmethod
    def _flags(cls, value: frozenset[str]) -> frozenset[str]:
        unknown = set(value) - FLAGS
        if unknown:
            raise ValueError(f"unknown data flags {sorted(unknown)}; HJ 212 defines {''.join(sorted(FLAGS))}")
        return value

    @model_validator(mode="after")
    def _codes(self) -> StationConfig:
        self.resolved()  # raises on an unknown metric or unit conversion
        return self

    @property
    def domain(self) -> str:
        """The contract domain the station's device belongs to."""
        return CATALOG[self.device_type].domain

    @property
    def system_code(self) -> str:
        """The ST the station is expected to send."""
        return self.st or DEFAULT_ST[self.device_type]

    @property
    def zone(self) -> ZoneInfo:
        """The zone ``DataTime`` is read in (HJ 212 carries none)."""
        return ZoneInfo(self.timezone)

    def resolved(self) -> dict[str, Resolved]:
        """Code → metric, conversion factor and range, merging the defaults with this station's overrides."""
        dtype = CATALOG[self.device_type]
        table: dict[str, CodeMap | None] = {**DEFAULT_CODES[self.device_type], **self.codes}
        out: dict[str, Resolved] = {}
        for code, entry in table.items():
            if entry is None:
                continue
            try:
                metric = dtype.metric(entry.metric)
            except KeyError:
                raise ValueError(f"code {code}: {self.device_type} has no metric {entry.metric!r}") from None
            sent = normal_unit(entry.unit) if entry.unit else metric.unit
            if sent == metric.unit:
                factor = 1.0
            elif (sent, metric.unit) in UNIT_FACTORS:
                factor = UNIT_FACTORS[(sent, metric.unit)]
            else:
                raise ValueError(f"code {code}: no conversion from {sent} to {metric.unit} ({metric.name})")
            out[code] = Resolved(metric.name, factor, metric.minimum, metric.maximum)
        return out


@dataclass(frozen=True)
class StationSecret:
    """A station's access password and optional SM4 key."""

    password: str | None
    sm4_key: bytes | None = None


def load_secrets(path: Path) -> dict[str, StationSecret]:
    """Read ``MN: password`` or ``MN: {password: …, sm4_key: …}`` from a YAML file outside the repo."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read station secrets: {exc}") from exc
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a mapping MN → password or MN → {{password, sm4_key}}")
    # Imported here: the registry imports this module, and only the gateway needs the cipher.
    from gulou.hj212.sm4 import parse_key

    out: dict[str, StationSecret] = {}
    for mn, value in doc.items():
        if isinstance(value, str | int):
            out[str(mn)] = StationSecret(str(value))
        elif isinstance(value, dict) and set(value) <= {"password", "sm4_key"}:
            key = value.get("sm4_key")
            pw = value.get("password")
            out[str(mn)] = StationSecret(None if pw is None else str(pw),
                                         parse_key(str(key)) if key is not None else None)
        else:
            raise ValueError(f"{path}: entry {mn}: expected a password or {{password, sm4_key}}")
    return out


class StationBook:
    """All stations by MN with their secrets; refuses at start-up a station whose password is missing."""

    def __init__(self, stations: Iterable[StationConfig], secrets: Mapping[str, StationSecret] | None = None) -> None:
        self._stations: dict[str, StationConfig] = {}
        self._resolved: dict[str, dict[str, Resolved]] = {}
        self._secrets = dict(secrets or {})
        for station in stations:
            if station.mn in self._stations:
                raise ValueError(f"MN {station.mn} is configured twice")
            secret = self._secrets.get(station.mn)
            if station.auth == "password" and (secret is None or secret.password is None):
                raise ValueError(f"station {station.mn} ({station.device_id}) checks a password but the "
                                 "secrets file has none for it")
            self._stations[station.mn] = station
            self._resolved[station.mn] = station.resolved()

    def __len__(self) -> int:
        return len(self._stations)

    def __iter__(self) -> Any:
        return iter(self._stations.values())

    def get(self, mn: str) -> StationConfig | None:
        """The station with this MN, or ``None``."""
        return self._stations.get(mn)

    def codes(self, mn: str) -> dict[str, Resolved]:
        """The station's resolved code table."""
        return self._resolved[mn]

    def secret(self, mn: str) -> StationSecret | None:
        """The station's password and key, if any."""
        return self._secrets.get(mn)


def load_stations(path: Path) -> list[StationConfig]:
    """Read ``stations: [...]`` from a YAML file."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read stations: {exc}") from exc
    rows = doc.get("stations") if isinstance(doc, dict) else None
    if not isinstance(rows, list):
        raise ValueError(f"{path}: expected a mapping with a 'stations' list")
    return [StationConfig.model_validate(row) for row in rows]
