"""The device registry: Gulou's sites and devices, loaded from YAML and validated with file:line errors."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gulou.devices.base import Domain
from gulou.devices.catalog import CATALOG, site_kinds
from gulou.devices.types.smart_bin import BIN_CATEGORIES, BinCategory

if TYPE_CHECKING:
    from gulou.hj212.stations import StationConfig

# The ten streets/towns of Gulou District (plan-targets.md, "Places").
STREETS: tuple[str, ...] = (
    "鼓东街道", "鼓西街道", "温泉街道", "东街街道", "南街街道",
    "安泰街道", "华大街道", "水部街道", "五凤街道", "洪山镇",
)
# A generous box around Fuzhou's urban core; a coordinate outside it is a typo, not a device.
LAT_RANGE = (25.9, 26.3)
LON_RANGE = (119.1, 119.5)
# HJ 212 data flags a value counts as valid with when its station says nothing else: N, "working normally"
# (HJ 212-2017 table 8; the other letters mark calibration, maintenance, faults, hand entry, over-range).
DEFAULT_VALID_FLAGS = frozenset("N")
# GB 3838's classes a river section can target (the standards tables check the same names).
WaterClass = Literal["I", "II", "III", "IV", "V"]
WATER_CLASSES: tuple[str, ...] = get_args(WaterClass)
M = TypeVar("M", bound=BaseModel)


class RegistryError(ValueError):
    """A registry file that does not validate; the message names the file and line."""


class Site(BaseModel):
    """A place devices sit at: a river section, a collection point, a lot, a building, an air site."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,63}$")
    kind: str
    name: str
    street: str
    lat: float
    lon: float
    river: str | None = None
    target_class: WaterClass | None = None
    drinking_source: bool = False
    # GB 3838 rates TP and TN of lakes and reservoirs on their own columns; unset means a river section.
    water_body: Literal["river", "lake"] | None = None
    lot_type: Literal["office", "residential", "commercial", "hospital", "shared", "scenic"] | None = None
    capacity: int | None = Field(default=None, ge=1)
    storeys: int | None = Field(default=None, ge=1, le=60)
    structure_type: Literal["masonry", "brick-wood", "timber", "concrete"] | None = None
    built: int | None = Field(default=None, ge=1800, le=2030)
    grade: Literal["A", "B", "C", "D"] | None = None

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        # The kinds are those the catalog's types are installed at.
        if value not in site_kinds():
            raise ValueError(f"unknown site kind {value!r}; known: {', '.join(site_kinds())}")
        return value

    @field_validator("street")
    @classmethod
    def _known_street(cls, value: str) -> str:
        if value not in STREETS:
            raise ValueError(f"unknown street {value!r}; Gulou's are: {', '.join(STREETS)}")
        return value

    @field_validator("lat", "lon")
    @classmethod
    def _in_fuzhou(cls, value: float, info: ValidationInfo) -> float:
        low, high = LAT_RANGE if info.field_name == "lat" else LON_RANGE
        if not low <= value <= high:
            raise ValueError(f"{info.field_name} {value} lies outside Fuzhou ({low}–{high})")
        return value

    @model_validator(mode="after")
    def _check(self) -> Site:
        required = site_kinds().get(self.kind, ())
        missing = [name for name in required if getattr(self, name) is None]
        if missing:
            raise ValueError(f"a {self.kind} site needs {', '.join(missing)}")
        return self


class DeviceRow(BaseModel):
    """A device as written in the registry file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,63}$")
    type: str
    site: str
    name: str
    lat: float | None = None
    lon: float | None = None

    _in_fuzhou = field_validator("lat", "lon")(Site._in_fuzhou.__func__)  # type: ignore[attr-defined]
    interval_s: int | None = Field(default=None, ge=1, le=86400)
    category: BinCategory | None = None
    point: str | None = None
    # An inclinometer's reading (degrees about x and y) when it was installed on the surveyed building: the
    # tilt rules and reports measure the building's lean from it. Absent: the sensor was zeroed at installation.
    tilt_baseline: list[float] | None = Field(default=None, min_length=2, max_length=2)
    # A station whose data logger speaks HJ 212: MN, evaluation or micro, ST, code overrides and the other
    # settings of gulou.hj212.stations.StationConfig (the device's id and type are filled in).
    # Validated into a StationConfig (typed Any here so the gateway's model is imported only when used).
    hj212: Any = None

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in CATALOG:
            raise ValueError(f"unknown device type {value!r}; known: {', '.join(sorted(CATALOG))}")
        return value

    @model_validator(mode="after")
    def _check(self) -> DeviceRow:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("give both lat and lon, or neither (the site's are used)")
        for name in CATALOG[self.type].device_fields:
            if getattr(self, name) is None:
                choices = f" ({'/'.join(BIN_CATEGORIES)})" if name == "category" else ""
                raise ValueError(f"a {self.type} needs its {name}{choices}")
        if self.tilt_baseline is not None and not {"tilt_x", "tilt_y"} <= {m.name for m in CATALOG[self.type].metrics}:
            raise ValueError(f"tilt_baseline: a {self.type} has no inclinometer")
        return self

    @field_validator("hj212")
    @classmethod
    def _station_block(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise ValueError("hj212 must be a mapping (mn, kind, st, codes, …)")
        if "type" not in info.data or "id" not in info.data:
            return None  # the device's own fields failed; those errors are reported
        return station_block(info.data["id"], info.data["type"], value)

    @property
    def station(self) -> StationConfig | None:
        """The validated HJ 212 block, if the row has one."""
        return self.hj212  # type: ignore[no-any-return]


def station_block(device_id: str, device_type: str, block: dict[str, Any]) -> StationConfig:
    """Validate a device's ``hj212`` block as a station feeding it; ``ValueError`` names each problem."""
    from gulou.hj212.stations import StationConfig  # the gateway's model; imported when a block is present

    data = _without_lines(block)
    for given in ("device_id", "device_type"):
        if given in data:
            raise ValueError(f"hj212: {given} is the device's own; leave it out of the block")
    try:
        return StationConfig.model_validate({**data, "device_id": device_id, "device_type": device_type})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) + ': ' if err['loc'] else ''}"
                             f"{err['msg'].removeprefix('Value error, ')}" for err in exc.errors())
        raise ValueError(problems) from None


@dataclass(frozen=True)
class Device:
    """A registered device with its site resolved: what the pipeline validates and tags readings with."""

    id: str
    type: str
    domain: Domain
    name: str
    street: str
    site: Site
    lat: float
    lon: float
    interval_s: int
    category: str | None = None
    point: str | None = None
    hj212: StationConfig | None = None
    tilt_baseline: tuple[float, float] | None = None

    @property
    def evaluation_station(self) -> bool:
        """A certified station (national method, HJ 212 logger) whose values count for the district's targets."""
        return self.hj212 is not None and self.hj212.kind == "evaluation"

    @property
    def valid_flags(self) -> frozenset[str]:
        """The HJ 212 data flags this device's values count as valid with (``N`` unless its station says)."""
        return self.hj212.valid_flags if self.hj212 is not None else DEFAULT_VALID_FLAGS

    def as_dict(self) -> dict[str, Any]:
        """Flat JSON-ready form used by ``gulou devices list --json``."""
        row: dict[str, Any] = {
            "id": self.id, "domain": self.domain, "type": self.type, "name": self.name,
            "street": self.street, "site": self.site.id, "site_name": self.site.name,
            "lat": self.lat, "lon": self.lon, "interval_s": self.interval_s,
        }
        extras = {
            "river": self.site.river, "target_class": self.site.target_class,
            "drinking_source": self.site.drinking_source or None, "water_body": self.site.water_body,
            "category": self.category,
            "capacity": self.site.capacity, "lot_type": self.site.lot_type,
            "storeys": self.site.storeys, "structure_type": self.site.structure_type, "point": self.point,
            "tilt_baseline": list(self.tilt_baseline) if self.tilt_baseline else None,
            "hj212_mn": self.hj212.mn if self.hj212 else None, "station": self.hj212.kind if self.hj212 else None,
        }
        row.update({k: v for k, v in extras.items() if v is not None})
        return row


@dataclass
class Registry:
    """All sites and devices, indexed by id."""

    sites: dict[str, Site] = field(default_factory=dict)
    devices: dict[str, Device] = field(default_factory=dict)
    source: str = "<memory>"
    # MN → device, built on first use (with the device count it was built at, to notice added devices).
    _by_mn: tuple[int, dict[str, Device]] | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.devices)

    def __iter__(self) -> Iterator[Device]:
        return iter(self.devices.values())

    def get(self, device_id: str) -> Device | None:
        """The device with this id, or ``None``."""
        return self.devices.get(device_id)

    def by_domain(self, domain: str | None = None) -> list[Device]:
        """Devices of one domain (all when ``None``), in file order."""
        return [d for d in self.devices.values() if domain is None or d.domain == domain]

    def station(self, mn: str) -> Device | None:
        """The device an HJ 212 station (its logger's MN) feeds, or ``None``."""
        if self._by_mn is None or self._by_mn[0] != len(self.devices):
            self._by_mn = (len(self.devices), {d.hj212.mn: d for d in self.devices.values() if d.hj212 is not None})
        return self._by_mn[1].get(mn)


# libyaml's loader is ~10x faster, which matters for the 100k-device load-test registries.
_SafeLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _LineLoader(_SafeLoader):  # type: ignore[misc]
    """SafeLoader that remembers the line each mapping starts on, for error messages."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    mapping: dict[str, Any] = loader.construct_mapping(node, deep=True)
    mapping["__line__"] = node.start_mark.line + 1
    mapping["__lines__"] = {str(k.value): k.start_mark.line + 1 for k, _ in node.value}
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def default_registry_path() -> Path:
    """The registry shipped with the package (a realistic Gulou deployment)."""
    return Path(str(resources.files("gulou.data").joinpath("registry.yaml")))


def load_registry(path: Path | str | None = None) -> Registry:
    """Load and validate a registry file; raise ``RegistryError`` naming file and line on any problem."""
    file = Path(path) if path is not None else default_registry_path()
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise RegistryError(f"{file}: cannot read registry: {exc.strerror}") from exc
    try:
        doc = yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as exc:
        raise RegistryError(f"{file}: not valid YAML: {exc}") from exc
    return parse_registry(doc, str(file))


def parse_registry(doc: Any, source: str) -> Registry:
    """Validate an already-parsed registry document (mappings may carry ``__line__``)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("devices"), list):
        raise RegistryError(f"{source}: expected a mapping with 'sites' and 'devices' lists")
    registry = Registry(source=source)
    mns: dict[str, str] = {}  # HJ 212 MN → the device it feeds
    for raw in doc.get("sites") or []:
        where, data = _split_line(raw, source)
        site = _validate(Site, data, source, where)
        line = where[1].get("id", where[0])
        if site.id in registry.sites:
            raise RegistryError(f"{source}:{line}: duplicate site id {site.id!r}")
        registry.sites[site.id] = site
    for raw in doc["devices"]:
        where, data = _split_line(raw, source)
        row = _validate(DeviceRow, data, source, where)
        if row.id in registry.devices:
            raise RegistryError(f"{source}:{where[1].get('id', where[0])}: duplicate device id {row.id!r}")
        found = registry.sites.get(row.site)
        if found is None:
            line = where[1].get("site", where[0])
            raise RegistryError(f"{source}:{line}: device {row.id!r}: unknown site {row.site!r}")
        site = found
        dtype = CATALOG[row.type]
        if row.station is not None:
            if row.station.mn in mns:
                line = where[1].get("hj212", where[0])
                raise RegistryError(f"{source}:{line}: device {row.id!r}: HJ 212 MN {row.station.mn} is already "
                                    f"the station of {mns[row.station.mn]!r}")
            mns[row.station.mn] = row.id
        registry.devices[row.id] = Device(
            id=row.id, type=row.type, domain=dtype.domain, name=row.name, street=site.street, site=site,
            lat=row.lat if row.lat is not None else site.lat,
            lon=row.lon if row.lon is not None else site.lon,
            interval_s=row.interval_s or dtype.default_interval_s, category=row.category, point=row.point,
            hj212=row.station,
            tilt_baseline=(row.tilt_baseline[0], row.tilt_baseline[1]) if row.tilt_baseline else None,
        )
    return registry


def _without_lines(value: Any) -> Any:
    """A nested mapping without the loader's ``__line__`` markers."""
    if isinstance(value, dict):
        return {k: _without_lines(v) for k, v in value.items() if not str(k).startswith("__line")}
    if isinstance(value, list):
        return [_without_lines(v) for v in value]
    return value


def _split_line(raw: Any, source: str) -> tuple[tuple[int, dict[str, int]], dict[str, Any]]:
    if not isinstance(raw, dict):
        raise RegistryError(f"{source}: every site and device must be a mapping, got {raw!r}")
    data = dict(raw)
    line = int(data.pop("__line__", 0))
    return (line, data.pop("__lines__", {})), data


def _validate(model: type[M], data: dict[str, Any], source: str, where: tuple[int, dict[str, int]]) -> M:
    line, field_lines = where
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        ident = data.get("id", "?")
        first = exc.errors()[0]["loc"]
        # Point at the offending key's own line where the error names one.
        line = field_lines.get(str(first[0]), line) if first else line
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or model.__name__.lower()}: {err['msg']}"
            for err in exc.errors()
        )
        label = "site" if model is Site else "device"
        raise RegistryError(f"{source}:{line}: {label} {ident!r}: {problems}") from None


def dump_registry(sites: list[dict[str, Any]], devices: list[dict[str, Any]]) -> str:
    """Serialise sites and device rows to registry YAML (used by ``gulou devices generate``)."""
    dumper: type = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump({"sites": sites, "devices": devices}, Dumper=dumper, allow_unicode=True, sort_keys=False,
                     width=200)
