"""Real servers for integration tests, started as local processes on free ports."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest


def require_binary(name: str, package: str) -> str:
    """Path of a server binary; skip when missing, or fail when GULOU_REQUIRE_SERVICES=1 (CI)."""
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None
    )
    if path:
        return path
    message = f"{name} not found: install the Debian package {package!r} to run this test"
    if os.environ.get("GULOU_REQUIRE_SERVICES") == "1":
        pytest.fail(message + " (GULOU_REQUIRE_SERVICES=1 turns this skip into a failure)")
    pytest.skip(message)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Block until something accepts connections on the port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


@dataclass
class Mosquitto:
    """A running Mosquitto process owned by a test."""

    binary: str
    port: int
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Broker URL for ``--broker``."""
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start (or restart) the broker on the same port with persistence in workdir."""
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            # Started as root, Mosquitto would switch to the 'mosquitto' user and fail to write its
            # persistence file into our temporary directory: stay as the current user.
            f"{'user root' + chr(10) if os.geteuid() == 0 else ''}"
            f"persistence true\npersistence_location {self.workdir}/\n"
            "autosave_interval 1\n"
            # Tests publish bursts; the default per-client queue of 1000 would drop (benchmarks.md).
            "max_queued_messages 1000000\nmax_inflight_messages 1000\n"
            "sys_interval 1\n"
            f"log_dest file {self.workdir}/mosquitto.log\n"
        )
        self.proc = subprocess.Popen([self.binary, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_for_port(self.port, proc=self.proc)

    def stop(self) -> None:
        """Stop the broker gracefully (it saves its persistence file)."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None


@contextmanager
def mosquitto_server(workdir: Path) -> Iterator[Mosquitto]:
    """Run Mosquitto from the Debian binary on a free port for the duration of the block."""
    server = Mosquitto(require_binary("mosquitto", "mosquitto"), free_port(), workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
