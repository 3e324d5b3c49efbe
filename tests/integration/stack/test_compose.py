"""What docker-compose.yml and the Dockerfile promise operators, checked on the files themselves."""

from __future__ import annotations

import re

import yaml

from tests.integration.stack.compose import COMPOSE_FILE, DOCKERFILE, load_compose, load_dockerfile

PINNED = re.compile(r"^[a-z0-9./_-]+:[A-Za-z0-9._-]+@sha256:[0-9a-f]{64}$")
# Only the devices' TLS listener is meant to be reached from other hosts.
PUBLIC_PORTS = {("mosquitto", "8883")}
SECRET_NAMES = re.compile(r"PASSWORD|TOKEN|SECRET")


def test_every_image_is_pinned_by_digest() -> None:
    for name, service in load_compose({}).items():
        if service.built:
            continue
        assert service.image is not None and PINNED.match(service.image), f"{name}: {service.image}"
    froms = [line.split()[1] for line in DOCKERFILE.read_text().splitlines() if line.upper().startswith("FROM ")]
    assert froms and all(PINNED.match(image) for image in froms), froms


def test_grafana_is_a_patched_11_6_release() -> None:
    image = load_compose({})["grafana"].image or ""
    match = re.match(r"grafana/grafana:11\.6\.(\d+)@", image)
    assert match and int(match.group(1)) >= 16, image


def test_only_the_device_listener_is_published_beyond_loopback() -> None:
    published = []
    for name, service in load_compose({}).items():
        for port in service.ports:
            published.append((name, port.container_port))
            if (name, port.container_port) not in PUBLIC_PORTS:
                assert port.host_ip == "127.0.0.1", f"{name} publishes {port} on every interface"
    assert ("mosquitto", "8883") in published


def test_registry_is_mounted_from_the_operators_file() -> None:
    for name, service in load_compose({}).items():
        registry = service.environment.get("GULOU_REGISTRY")
        if not service.built:
            continue
        assert registry, f"{name} does not name its registry"
        mounts = [m for m in service.mounts if m.target == registry]
        assert mounts and not mounts[0].named and mounts[0].read_only, f"{name}: {registry} is not bind-mounted"
    assert "GULOU_REGISTRY" not in load_dockerfile().env


def test_collectors_have_fixed_client_ids_and_their_own_spools() -> None:
    command = load_compose({})["ingest"].command or []
    assert "--client-id" in command and command[command.index("--client-id") + 1].startswith("gulou-ingest-")
    # One spool directory shared by every collector of the image lost acknowledged batches (issue 12).
    assert "GULOU_SPOOL_DIR" not in load_dockerfile().env
    assert "GULOU_SPOOL_DIR" not in load_compose({})["ingest"].environment


def test_health_checks_ask_the_services_themselves() -> None:
    compose = load_compose({})
    command = compose["ingest"].command or []
    slot = command[command.index("--client-id") + 1]
    assert compose["ingest"].healthcheck == ["gulou", "health", "ingest", "--client-id", slot]
    assert compose["rules"].healthcheck == ["gulou", "health", "rules"]
    assert compose["rules"].environment.get("GULOU_OPS__LISTEN"), "gulou health rules asks the service's /healthz"


def test_no_secret_is_written_into_the_compose_file() -> None:
    raw = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    for name, spec in raw["services"].items():
        environment = spec.get("environment") or {}
        for key, value in environment.items():
            if SECRET_NAMES.search(key):
                assert str(value).startswith("${"), f"{name}: {key} is written in the file"
        for key in ("command", "entrypoint"):
            words = " ".join(spec.get(key) or [])
            assert " -P " not in words and "--password" not in words, f"{name}: password on a command line"
        test = " ".join((spec.get("healthcheck") or {}).get("test") or [])
        assert " -P " not in test and "PASSWORD" not in test, f"{name}: password in the health check"
