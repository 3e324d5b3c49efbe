"""deploy/mosquitto/make-passwd.sh with the real mosquitto_passwd: passwords never on a command line, every
line of an import kept, service users rebuilt from the environment, reserved names refused."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from tests.integration.stack.compose import ROOT
from tests.servers import require_binary

pytestmark = pytest.mark.integration
SCRIPT = ROOT / "deploy" / "mosquitto" / "make-passwd.sh"


@pytest.fixture
def shim(tmp_path: Path) -> Path:
    """A mosquitto_passwd first on PATH that records its arguments, then runs the real one."""
    real = require_binary("mosquitto_passwd", "mosquitto")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "mosquitto_passwd"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{tmp_path}/argv.log"\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    return tmp_path


def run(shim: Path, *args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the script against a private auth directory and certificates."""
    certs = shim / "certs"
    certs.mkdir(exist_ok=True)
    for name in ("server.crt", "server.key"):
        (certs / name).write_text("placeholder\n")
    environ = {"PATH": f"{shim / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
               "GULOU_MOSQUITTO_AUTH_DIR": str(shim / "auth"), "GULOU_TLS_DIR": str(certs), **env}
    return subprocess.run(["/bin/sh", str(SCRIPT), *args], input=stdin, capture_output=True, text=True,
                          env=environ, check=False)


def users(path: Path) -> dict[str, str]:
    """user -> hash of a Mosquitto password file."""
    return dict(line.split(":", 1) for line in path.read_text().splitlines() if line)


def matches(password_hash: str, password: str) -> bool:
    """Whether a Mosquitto 2 ``$7$`` (PBKDF2-SHA512) hash is of this password."""
    _, kind, iterations, salt, digest = password_hash.split("$")
    assert kind == "7"
    derived = hashlib.pbkdf2_hmac("sha512", password.encode(), base64.b64decode(salt), int(iterations), 64)
    return derived == base64.b64decode(digest)


def test_service_users_from_environment_and_files_never_on_argv(shim: Path) -> None:
    rules_file = shim / "rules-password"
    rules_file.write_text("rules secret from a file\n")
    done = run(shim, "services", GULOU_INGEST_PASSWORD="ingest: secret", GULOU_RULES_PASSWORD_FILE=str(rules_file),
               GULOU_SIM_PASSWORD="sim-secret")
    assert done.returncode == 0, done.stderr
    table = users(shim / "auth" / "services.passwd")
    assert set(table) == {"gulou-ingest", "gulou-rules", "gulou-sim", "gulou-health"}
    assert matches(table["gulou-ingest"], "ingest: secret")
    assert matches(table["gulou-rules"], "rules secret from a file")
    health = (shim / "auth" / "health" / "mosquitto_sub").read_text().splitlines()
    assert health[0] == "-u gulou-health" and matches(table["gulou-health"], health[1].removeprefix("-P "))
    argv = (shim / "argv.log").read_text()
    for secret in ("ingest: secret", "rules secret", "sim-secret", health[1].removeprefix("-P ")):
        assert secret not in argv
    # Emptying an optional password removes its user on the next run.
    done = run(shim, "services", GULOU_INGEST_PASSWORD="a", GULOU_RULES_PASSWORD="b")
    assert done.returncode == 0, done.stderr
    assert set(users(shim / "auth" / "services.passwd")) == {"gulou-ingest", "gulou-rules", "gulou-health"}


def test_missing_service_password_or_certificate_fails(shim: Path) -> None:
    assert run(shim, "services", GULOU_INGEST_PASSWORD="a").returncode != 0
    done = run(shim, "services", GULOU_INGEST_PASSWORD="a", GULOU_RULES_PASSWORD="b",
               GULOU_TLS_DIR=str(shim / "nowhere"))
    assert done.returncode != 0 and "make-certs.sh" in done.stderr


def test_import_keeps_a_last_line_without_newline(shim: Path) -> None:
    auth = shim / "auth"
    auth.mkdir()
    # An existing file whose last line has no newline, as an editor may leave it.
    done = run(shim, "import", stdin="old-device:old-secret")
    assert done.returncode == 0, done.stderr
    devices = auth / "devices.passwd"
    devices.write_text(devices.read_text().rstrip("\n"))
    done = run(shim, "import", stdin="# provisioning export\nwq-01:pw one\n\nair-02:pw:two\r\nst-03:last")
    assert done.returncode == 0, done.stderr
    table = users(devices)
    assert set(table) == {"old-device", "wq-01", "air-02", "st-03"}
    assert matches(table["old-device"], "old-secret")
    assert matches(table["air-02"], "pw:two")
    assert matches(table["st-03"], "last")
    assert "pw one" not in (shim / "argv.log").read_text()
    done = run(shim, "delete", "wq-01")
    assert done.returncode == 0, done.stderr
    assert set(users(devices)) == {"old-device", "air-02", "st-03"}


def test_device_ids_cannot_take_service_names(shim: Path) -> None:
    done = run(shim, "import", stdin="gulou-ingest-1:x\n")
    assert done.returncode != 0 and "reserved" in done.stderr
    assert users(shim / "auth" / "devices.passwd") == {}
