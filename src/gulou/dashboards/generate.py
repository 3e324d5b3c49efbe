"""Render every dashboard (and the device gazetteer) to JSON, write it, or report which files are stale."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from gulou.dashboards import city, environment, generic, operations, overview
from gulou.devices.catalog import domains
from gulou.devices.registry import Registry

DEFAULT_OUT = Path("dashboards")
DEFAULT_GAZETTEER = Path("grafana/gazetteer/gulou-devices.json")

# File name → builder. Explicit, so adding a dashboard is one line here.
BUILDERS: dict[str, Callable[[Registry], dash.Dashboard]] = {
    "overview.json": overview.build,
    "air.json": lambda _registry: environment.build_air(),
    "water.json": lambda _registry: environment.build_water(),
    "waste.json": lambda _registry: city.build_waste(),
    "parking.json": lambda _registry: city.build_parking(),
    "structure.json": lambda _registry: city.build_structure(),
    "alerts.json": lambda _registry: operations.build_alerts(),
    "pipeline.json": lambda _registry: operations.build_pipeline(),
}


def builders() -> dict[str, Callable[[Registry], dash.Dashboard]]:
    """BUILDERS plus a plain dashboard (``<domain>.json``) for every domain without a hand-built one."""
    found = dict(BUILDERS)
    for domain in domains():
        if f"{domain}.json" not in found:
            found[f"{domain}.json"] = functools.partial(_generic, domain)
    return found


def _generic(domain: str, _registry: Registry) -> dash.Dashboard:
    return generic.build_domain(domain)


def to_json_text(data: Any) -> str:
    """Stable JSON text: sorted keys, two-space indent, Chinese kept readable, trailing newline."""
    return json.dumps(data, cls=JSONEncoder, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def build_all(registry: Registry) -> dict[str, dict[str, Any]]:
    """Every dashboard as plain JSON data, by file name."""
    result: dict[str, dict[str, Any]] = {}
    for name, builder in builders().items():
        # A round trip through the encoder turns the SDK models (and enums) into plain JSON values.
        data: dict[str, Any] = json.loads(json.dumps(builder(registry).build(), cls=JSONEncoder))
        _number_panels(data)
        result[name] = data
    return result


def _number_panels(data: dict[str, Any]) -> None:
    # Grafana needs unique panel ids for links and repeats; the SDK leaves them unset.
    for index, panel in enumerate(data.get("panels") or [], start=1):
        panel["id"] = index


def gazetteer(registry: Registry) -> list[dict[str, Any]]:
    """Device coordinates in Grafana's gazetteer format (key, latitude, longitude, name), by device id."""
    return [
        {"key": d.id, "latitude": d.lat, "longitude": d.lon, "name": f"{d.name} · {d.street} · {d.domain}"}
        for d in sorted(registry, key=lambda d: d.id)
    ]


@dataclass(frozen=True)
class Rendered:
    """One file the generator owns: where it goes and its exact content."""

    path: Path
    text: str


def render(registry: Registry, out: Path = DEFAULT_OUT, gazetteer_path: Path = DEFAULT_GAZETTEER) -> list[Rendered]:
    """All generated files with their content."""
    files = [Rendered(out / name, to_json_text(data)) for name, data in build_all(registry).items()]
    files.append(Rendered(gazetteer_path, to_json_text(gazetteer(registry))))
    return files


def stale(files: list[Rendered]) -> list[Path]:
    """Files that are missing or differ from what the generator produces now."""
    return [f.path for f in files if not f.path.is_file() or f.path.read_text(encoding="utf-8") != f.text]


def write(files: list[Rendered]) -> list[Path]:
    """Write the files that changed; return their paths."""
    changed = stale(files)
    for f in files:
        if f.path in changed:
            f.path.parent.mkdir(parents=True, exist_ok=True)
            f.path.write_text(f.text, encoding="utf-8")
    return changed
