"""The stack fixture: the steps of docs/deploy.md, "Bring it up", with local processes instead of containers."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.stack.stack import Stack
from tests.tsdb import victoria_metrics_server

# Devices of the shipped registry that get broker credentials in the stack tests.
DEVICES = ("st-001-ne", "st-001-sw", "bin-001-rec")


@pytest.fixture
def stack_root() -> Iterator[Path]:
    """A private directory every local user can traverse (Mosquitto drops to its own user when run as root)."""
    root = Path(tempfile.mkdtemp(prefix="gulou-stack-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def dotenv(root: Path) -> dict[str, str]:
    """A `.env` as an operator writes it from .env.example: every change-me replaced."""
    return {
        "GULOU_INFLUX_ORG": "gulou", "GULOU_INFLUX_BUCKET": "gulou",
        "GULOU_INFLUX_TOKEN": secrets.token_urlsafe(24),
        "INFLUXDB_ADMIN_USERNAME": "admin", "INFLUXDB_ADMIN_PASSWORD": secrets.token_urlsafe(24),
        # Spaces and colons: the password files must not depend on tame passwords.
        "GULOU_INGEST_PASSWORD": "ingest " + secrets.token_urlsafe(12) + ":x",
        "GULOU_RULES_PASSWORD": secrets.token_urlsafe(24),
        "GULOU_SIM_PASSWORD": secrets.token_urlsafe(24),
        "GULOU_ALERTS_PASSWORD": secrets.token_urlsafe(24),
        "GULOU_CERTS_DIR": str(root / "certs"),
        "GRAFANA_ADMIN_USER": "admin", "GRAFANA_ADMIN_PASSWORD": secrets.token_urlsafe(24),
        "GULOU_LOG_LEVEL": "INFO",
    }


def device_passwords() -> dict[str, str]:
    """One password per device, as the provisioning system hands them over."""
    return {device: secrets.token_urlsafe(16) for device in DEVICES}


@pytest.fixture
def broker_stack(stack_root: Path) -> Iterator[Stack]:
    """Certificates, password files and the broker (steps 1-3 of docs/deploy.md); no gulou service yet."""
    with victoria_metrics_server(stack_root / "victoria-metrics") as vm:
        stack = Stack(stack_root, dotenv(stack_root), vm)
        try:
            stack.make_certs()
            done = stack.run("mosquitto-init", extra_env=stack.init_env())
            assert done.returncode == 0, done.stderr.decode()
            stack.device_passwords = device_passwords()
            lines = "".join(f"{d}:{p}\n" for d, p in stack.device_passwords.items())
            # `docker compose run --rm -T mosquitto-init import < devices-credentials.txt`
            done = stack.run("mosquitto-init", ["import"], stdin=lines.encode(), extra_env=stack.init_env())
            assert done.returncode == 0, done.stderr.decode()
            stack.start_mosquitto()
            yield stack
        finally:
            stack.close()


@pytest.fixture
def stack(broker_stack: Stack) -> Stack:
    """The whole default stack: broker, collector, rules engine (VictoriaMetrics standing in for InfluxDB)."""
    for name, service in broker_stack.services.items():
        if service.built and not service.profiles:
            broker_stack.start(name)
    return broker_stack


def ca_file(stack: Stack) -> Path:
    """The CA certificate devices are given."""
    return stack.host_path("mosquitto-init", "/deploy/certs") / "ca.crt"

