"""docker-compose.yml and the Dockerfile, read the way Compose and Docker read them, for the stack test.

Only what the stack test needs: variable interpolation (``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``,
``${VAR:?message}``, ``$$``), YAML merge keys (``<<``, handled by PyYAML), and per service its image,
entrypoint, command, environment, mounts, published ports and health check; from the Dockerfile the final
stage's ``ENV``, ``WORKDIR``, ``ENTRYPOINT`` and ``VOLUME``.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

_VARIABLE = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
                       r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)")


class ComposeError(ValueError):
    """A variable Compose would refuse (``${VAR:?...}``) or a construct this reader does not know."""


def interpolate(text: str, env: dict[str, str]) -> str:
    """Substitute variables as Compose does."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("name") or match.group("bare")
        op, arg = match.group("op"), match.group("arg")
        value = env.get(name)
        if op == ":-":
            return value if value else arg
        if op == "-":
            return value if value is not None else arg
        if op in (":?", "?") and (value is None or (op == ":?" and not value)):
            raise ComposeError(f"required variable {name} is missing: {arg}")
        return value or ""

    return _VARIABLE.sub(substitute, text)


def _interpolate_tree(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_interpolate_tree(item, env) for item in node]
    if isinstance(node, dict):
        return {key: _interpolate_tree(value, env) for key, value in node.items()}
    return node


@dataclass(frozen=True)
class Mount:
    """One entry of a service's ``volumes``: a named volume or a bind mount of a host path."""

    source: str
    target: str
    read_only: bool

    @property
    def named(self) -> bool:
        """A named volume (``ingest-data``) rather than a host path (``./deploy/...``)."""
        return not self.source.startswith((".", "/", "~"))

    def host_source(self) -> Path:
        """The bind mount's host path, relative paths taken from the compose file's directory."""
        return (COMPOSE_FILE.parent / self.source).resolve()


@dataclass(frozen=True)
class Port:
    """A published port: host address (``""`` = every interface), host port, container port."""

    host_ip: str
    host_port: str
    container_port: str


@dataclass(frozen=True)
class Service:
    """One service of the compose file, after interpolation."""

    name: str
    spec: dict[str, Any]

    @property
    def image(self) -> str | None:
        """The image reference (``None`` for a service built here without a name)."""
        value = self.spec.get("image")
        return str(value) if value is not None else None

    @property
    def built(self) -> bool:
        """Whether the image is built from this repository's Dockerfile."""
        return "build" in self.spec

    def _words(self, key: str) -> list[str] | None:
        value = self.spec.get(key)
        if value is None:
            return None
        return [str(v) for v in value] if isinstance(value, list) else shlex.split(str(value))

    @property
    def entrypoint(self) -> list[str] | None:
        """The service's entrypoint override, if any."""
        return self._words("entrypoint")

    @property
    def command(self) -> list[str] | None:
        """The service's command, if any."""
        return self._words("command")

    @property
    def environment(self) -> dict[str, str]:
        """Environment variables, in either of Compose's two spellings."""
        env = self.spec.get("environment") or {}
        if isinstance(env, list):
            pairs = (item.split("=", 1) for item in env)
            return {p[0]: (p[1] if len(p) > 1 else "") for p in pairs}
        return {str(k): "" if v is None else str(v) for k, v in env.items()}

    @property
    def mounts(self) -> list[Mount]:
        """The ``volumes`` entries in the short syntax ``SOURCE:TARGET[:ro]``."""
        result = []
        for entry in self.spec.get("volumes") or []:
            if not isinstance(entry, str):
                raise ComposeError(f"{self.name}: only the short volume syntax is supported, got {entry!r}")
            parts = entry.split(":")
            if len(parts) < 2:
                raise ComposeError(f"{self.name}: anonymous volume {entry!r}")
            result.append(Mount(parts[0], parts[1], len(parts) > 2 and "ro" in parts[2].split(",")))
        return result

    @property
    def ports(self) -> list[Port]:
        """Published ports in the short syntax ``[IP:]HOST:CONTAINER``."""
        result = []
        for entry in self.spec.get("ports") or []:
            parts = str(entry).split(":")
            if len(parts) == 3:
                result.append(Port(parts[0], parts[1], parts[2]))
            elif len(parts) == 2:
                result.append(Port("", parts[0], parts[1]))
            else:
                raise ComposeError(f"{self.name}: port {entry!r} publishes no host port")
        return result

    @property
    def healthcheck(self) -> list[str] | None:
        """The health check's ``test`` as an argv (``CMD-SHELL`` becomes ``sh -c``)."""
        test = (self.spec.get("healthcheck") or {}).get("test")
        if test is None:
            return None
        if isinstance(test, str):
            return ["/bin/sh", "-c", test]
        kind, *rest = [str(t) for t in test]
        if kind == "CMD":
            return rest
        if kind == "CMD-SHELL":
            return ["/bin/sh", "-c", " ".join(rest)]
        raise ComposeError(f"{self.name}: health check kind {kind!r}")

    @property
    def profiles(self) -> list[str]:
        """Profiles the service belongs to (empty: started by a plain ``docker compose up``)."""
        return [str(p) for p in self.spec.get("profiles") or []]


def load_compose(env: dict[str, str], path: Path = COMPOSE_FILE) -> dict[str, Service]:
    """The services of the compose file with ``env`` (the ``.env`` file's values) interpolated."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    services = _interpolate_tree(document["services"], env)
    return {name: Service(name, spec) for name, spec in services.items()}


@dataclass(frozen=True)
class Image:
    """What the final stage of the Dockerfile gives every container of the built image."""

    env: dict[str, str]
    workdir: str
    entrypoint: list[str]
    volumes: list[str]


def load_dockerfile(path: Path = DOCKERFILE) -> Image:
    """ENV, WORKDIR, ENTRYPOINT and VOLUME of the Dockerfile's last stage."""
    text = path.read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    last_from = max(i for i, line in enumerate(lines) if line.upper().startswith("FROM "))
    env: dict[str, str] = {}
    workdir = "/"
    entrypoint: list[str] = []
    volumes: list[str] = []
    for line in lines[last_from + 1:]:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "ENV":
            for word in shlex.split(rest):
                key, sep, value = word.partition("=")
                if not sep:
                    raise ComposeError(f"Dockerfile: use ENV KEY=VALUE, got {line!r}")
                env[key] = value
        elif keyword == "WORKDIR":
            workdir = rest.strip()
        elif keyword == "ENTRYPOINT":
            entrypoint = [str(word) for word in json.loads(rest)]
        elif keyword == "VOLUME":
            volumes += [str(word) for word in json.loads(rest)] if rest.startswith("[") else rest.split()
    return Image(env, workdir, entrypoint, volumes)
