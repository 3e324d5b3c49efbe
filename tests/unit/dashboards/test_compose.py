"""The production stack: pinned images, health checks, broker auth files, no committed secrets."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)(?::?-[^}]*)?\}")
SECRET_KEY = re.compile(r"(PASSWORD|TOKEN|SECRET)", re.IGNORECASE)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    return data


def test_every_service_has_a_pinned_image_or_build_and_a_healthcheck(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"mosquitto", "influxdb", "grafana", "ingest", "rules", "sim"} <= set(services)
    for name, service in services.items():
        # One-shot set-up services (restart: "no") run to completion; every long-running one is checked.
        if service.get("restart") != "no":
            assert "healthcheck" in service and service["healthcheck"]["test"], name
        image = service.get("image")
        assert image or "build" in service, name
        if image:
            repo, _, tag = image.split("@")[0].rpartition(":")
            assert repo and tag and tag != "latest" and re.match(r"^\d+\.\d+\.\d+", tag), f"{name}: {image}"
    assert services["sim"]["profiles"] == ["sim"]
    assert services["mosquitto"]["image"].startswith("eclipse-mosquitto:2.")
    assert services["influxdb"]["image"].startswith("influxdb:2.7.")
    assert re.match(r"grafana/grafana:1[12]\.\d+\.\d+@sha256:[0-9a-f]{64}$", services["grafana"]["image"])


def test_gulou_services_use_the_broker_and_influx_settings(compose: dict[str, Any]) -> None:
    for name in ("ingest", "rules"):
        env = compose["services"][name]["environment"]
        assert env["GULOU_BROKER"] == "mqtt://mosquitto:1883"
        for key in ("GULOU_BROKER_USERNAME", "GULOU_BROKER_PASSWORD", "GULOU_INFLUX_URL", "GULOU_INFLUX_ORG",
                    "GULOU_INFLUX_BUCKET", "GULOU_INFLUX_TOKEN", "GULOU_STORE"):
            assert key in env, (name, key)


def test_named_volumes_only(compose: dict[str, Any]) -> None:
    named = set(compose["volumes"])
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            operator_file = re.match(r"^\$\{[A-Z0-9_]+:-(\./[^}]+)\}:", volume)
            if operator_file:  # the operator's own file (registry, certificates, operators), default given
                assert operator_file.group(1).startswith("./"), (name, volume)
                continue
            source = volume.split(":")[0]
            assert source.startswith("./") or source in named, (name, volume)
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


def test_broker_config_acl_and_password_script(compose: dict[str, Any]) -> None:
    conf = (ROOT / "deploy/mosquitto/mosquitto.conf").read_text(encoding="utf-8")
    assert "allow_anonymous false" in conf
    assert "per_listener_settings true" in conf
    # Services on 1883 and devices on 8883 (TLS), each listener with its own users and ACL.
    for listener, who in (("1883", "services"), ("8883", "devices")):
        block = conf.split(f"listener {listener}", 1)[1].split("\nlistener ", 1)[0]
        assert re.search(rf"^password_file /mosquitto/auth/{who}\.passwd$", block, re.M), listener
        assert re.search(rf"^acl_file /mosquitto/config/acl\.{who}$", block, re.M), listener
    assert "certfile" in conf.split("listener 8883", 1)[1]
    assert re.search(r"^max_queued_messages \d{5,}$", conf, re.M)
    devices = (ROOT / "deploy/mosquitto/acl.devices").read_text(encoding="utf-8")
    assert "pattern write gulou/+/%u/telemetry" in devices and "pattern write gulou/+/%u/status" in devices
    services = (ROOT / "deploy/mosquitto/acl.services").read_text(encoding="utf-8")
    for user in ("gulou-ingest", "gulou-rules"):
        assert re.search(rf"user {user}\n(topic .*\n)*topic read gulou/\+/\+/telemetry", services), user
    for acl in (devices, services):
        assert "pattern readwrite" not in acl and "topic readwrite #" not in acl
    mounts = " ".join(compose["services"]["mosquitto"]["volumes"])
    assert "./deploy/mosquitto/mosquitto.conf:" in mounts and "./deploy/mosquitto/acl.services:" in mounts
    assert "make-passwd.sh" in " ".join(compose["services"]["mosquitto-init"]["volumes"])
    assert (ROOT / "deploy/mosquitto/make-passwd.sh").stat().st_mode & 0o111
    assert not list((ROOT / "deploy/mosquitto").glob("*passwd")), "a password file must not be committed"


def test_influx_init_script_maps_the_bucket(compose: dict[str, Any]) -> None:
    script = (ROOT / "deploy/influxdb/10-dbrp.sh").read_text(encoding="utf-8")
    assert "influx v1 dbrp create" in script and "DOCKER_INFLUXDB_INIT_BUCKET" in script
    env = compose["services"]["influxdb"]["environment"]
    assert env["DOCKER_INFLUXDB_INIT_MODE"] == "setup"
    for key in ("USERNAME", "PASSWORD", "ORG", "BUCKET", "ADMIN_TOKEN"):
        assert VARIABLE.fullmatch(env[f"DOCKER_INFLUXDB_INIT_{key}"]), key
    assert any("docker-entrypoint-initdb.d/10-dbrp.sh" in v for v in compose["services"]["influxdb"]["volumes"])


def _secret_values(node: Any, key: str = "") -> list[tuple[str, str]]:
    if isinstance(node, dict):
        return [pair for k, v in node.items() for pair in _secret_values(v, str(k))]
    if isinstance(node, list):
        return [pair for v in node for pair in _secret_values(v, key)]
    return [(key, str(node))] if SECRET_KEY.search(key) else []


def test_no_secrets_committed(compose: dict[str, Any]) -> None:
    # Named volumes (e.g. grafana-secrets) are names, not values.
    pairs = _secret_values({k: v for k, v in compose.items() if k != "volumes"})
    assert pairs
    for key, value in pairs:
        assert VARIABLE.fullmatch(value), f"{key} must be a ${{VAR}} reference, not {value!r}"
    datasource = yaml.safe_load((ROOT / "grafana/provisioning/datasources/gulou.yaml").read_text(encoding="utf-8"))
    assert datasource["datasources"][0]["secureJsonData"]["httpHeaderValue1"] == "Token ${GULOU_INFLUX_TOKEN}"
    for path in [*(ROOT / "deploy").rglob("*"), ROOT / "Dockerfile"]:
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert not re.search(r"(?i)(password|token)\s*[=:]\s*['\"]?[A-Za-z0-9+/]{8,}", text), path
            assert "mosquitto_passwd -b" not in text or "$" in text


def test_env_example_lists_every_referenced_variable(compose: dict[str, Any]) -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    text += (ROOT / "grafana/provisioning/datasources/gulou.yaml").read_text(encoding="utf-8")
    referenced = set(VARIABLE.findall(text))
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    listed = set(re.findall(r"^([A-Z0-9_]+)=", example, re.M))
    provided_by_compose = set(compose["services"]["grafana"]["environment"])
    assert referenced - listed - provided_by_compose == set()
    for line in example.splitlines():
        if SECRET_KEY.search(line.split("=")[0]) and "=" in line and not line.startswith("#"):
            value = line.split("=", 1)[1]
            assert value == "" or value.startswith("change-me"), line
