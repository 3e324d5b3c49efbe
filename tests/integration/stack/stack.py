"""The compose stack as local processes: the services' own files, commands and environment, on free ports.

What differs from ``docker compose up``, and only this: container paths become directories under one
temporary root (a named volume is a directory, a bind mount is the repository's file), the service names
``mosquitto:1883``, ``mosquitto:8883`` and ``influxdb:8086`` become free loopback ports, VictoriaMetrics answers
InfluxDB 2's write API, and the image's ``gulou`` entrypoint is this interpreter's ``python -m gulou``.
Everything else (mosquitto.conf, the ACLs, the password files made by make-passwd.sh, the certificates made by
make-certs.sh, commands, environment, working directory) is read from docker-compose.yml and the Dockerfile.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from tests.integration.stack.compose import ROOT, Image, Mount, Service, load_compose, load_dockerfile
from tests.servers import free_port, require_binary, wait_for_port
from tests.tsdb import VictoriaMetrics

T = TypeVar("T")
_PATH = re.compile(r"(?<![\w$.])/[A-Za-z0-9_./-]+")


def until(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class Stack:
    """The services of docker-compose.yml run from one ``.env`` under ``root``."""

    def __init__(self, root: Path, dotenv: dict[str, str], vm: VictoriaMetrics) -> None:
        self.root = root
        self.dotenv = dotenv
        self.vm = vm
        self.services = load_compose(dotenv)
        self.image: Image = load_dockerfile()
        self.ports = {("mosquitto", "1883"): free_port(), ("mosquitto", "8883"): free_port(),
                      ("influxdb", "8086"): vm.port}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.device_passwords: dict[str, str] = {}
        (root / "logs").mkdir(parents=True, exist_ok=True)

    # -- paths and addresses -------------------------------------------------------------------------------
    def volume(self, name: str) -> Path:
        """The directory standing in for a named volume."""
        path = self.root / "volumes" / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _mount_for(self, service: Service, container_path: str) -> tuple[Mount, str] | None:
        best: tuple[Mount, str] | None = None
        for mount in service.mounts:
            target = mount.target.rstrip("/")
            if container_path == target or container_path.startswith(target + "/"):
                rest = container_path[len(target):].lstrip("/")
                if best is None or len(target) > len(best[0].target.rstrip("/")):
                    best = (mount, rest)
        return best

    def host_path(self, service_name: str, container_path: str) -> Path:
        """Where a path inside the service's container is on this machine (it must be mounted)."""
        service = self.services[service_name]
        found = self._mount_for(service, container_path)
        if found is None and service.built:
            # A VOLUME of the image that compose mounts nothing on: Docker gives the container an anonymous one.
            for volume in self.image.volumes:
                if container_path == volume or container_path.startswith(volume.rstrip("/") + "/"):
                    rest = container_path[len(volume):].lstrip("/")
                    base = self.volume(f"anonymous-{service_name}")
                    return base / rest if rest else base
        if found is None:
            raise AssertionError(f"{service_name}: {container_path} is not on any mount of docker-compose.yml")
        mount, rest = found
        base = self.volume(mount.source) if mount.named else mount.host_source()
        return base / rest if rest else base

    def translate(self, service_name: str, text: str) -> str:
        """A value as the service would see it here: service addresses and mounted paths rewritten."""
        for (host, port), local in self.ports.items():
            text = text.replace(f"{host}:{port}", f"127.0.0.1:{local}")
        service = self.services[service_name]

        def path(match: re.Match[str]) -> str:
            value = match.group(0)
            if self._mount_for(service, value.rstrip("/")) is None:
                return value
            return str(self.host_path(service_name, value.rstrip("/"))) + ("/" if value.endswith("/") else "")

        return _PATH.sub(path, text)

    def port(self, service_name: str, container_port: str) -> int:
        """The local port standing in for a service's container port."""
        return self.ports[(service_name, container_port)]

    # -- running commands ----------------------------------------------------------------------------------
    def _argv(self, service: Service, args: list[str] | None = None) -> list[str]:
        entrypoint = service.entrypoint if service.entrypoint is not None else (
            self.image.entrypoint if service.built else [])
        words = entrypoint + (args if args is not None else service.command or [])
        if words[:1] == ["gulou"]:
            words = [sys.executable, "-m", "gulou", *words[1:]]
        return [self.translate(service.name, w) for w in words]

    def environ(self, service_name: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The container's environment: the image's ENV, then the service's, with values rewritten."""
        service = self.services[service_name]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
               "HOME": str(self.volume(f"home-{service_name}"))}
        if service.built:
            env.update(self.image.env)
        env.update(service.environment)
        env.update(extra or {})
        listen = env.get("GULOU_OPS__LISTEN")
        if listen:
            # The service's /metrics and /healthz port, like the broker's ports, becomes a free loopback port.
            port = listen.rpartition(":")[2]
            local = self.ports.setdefault((service_name, port), free_port())
            env["GULOU_OPS__LISTEN"] = f"127.0.0.1:{local}"
        return {k: self.translate(service_name, v) for k, v in env.items()}

    def _cwd(self, service: Service) -> Path:
        if not service.built:
            return self.root
        path = self.host_path(service.name, self.image.workdir)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def run(self, service_name: str, args: list[str] | None = None, *, stdin: bytes | None = None,
            extra_env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
        """``docker compose run --rm SERVICE ARGS``: the service's entrypoint with these arguments, to the end."""
        service = self.services[service_name]
        return subprocess.run(self._argv(service, args), input=stdin, capture_output=True, timeout=timeout,
                              env=self.environ(service_name, extra_env), cwd=self._cwd(service), check=False)

    def start(self, service_name: str, args: list[str] | None = None,
              extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """``docker compose up SERVICE``: its command, in the background, logging to logs/SERVICE.log."""
        service = self.services[service_name]
        log = (self.root / "logs" / f"{service_name}.log").open("ab")
        proc = subprocess.Popen(self._argv(service, args), stdout=log, stderr=subprocess.STDOUT,
                                env=self.environ(service_name, extra_env), cwd=self._cwd(service))
        log.close()
        self.procs[service_name] = proc
        return proc

    def stop(self, service_name: str, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """``docker compose stop SERVICE`` (SIGTERM, then wait); returns the exit code."""
        proc = self.procs.pop(service_name)
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        return int(proc.returncode)

    def log(self, service_name: str) -> str:
        """What the service has logged so far."""
        path = self.root / "logs" / f"{service_name}.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def healthcheck(self, service_name: str, timeout: float = 30) -> subprocess.CompletedProcess[bytes]:
        """Run the service's compose health check here; exit code 0 means healthy."""
        service = self.services[service_name]
        argv = service.healthcheck
        assert argv is not None, f"{service_name} has no health check"
        if argv[:1] == ["gulou"]:
            argv = [sys.executable, "-m", "gulou", *argv[1:]]
        # Inside its container a service reaches its own ports on 127.0.0.1 under their container numbers.
        local = [self.translate(service_name, w) for w in argv]
        for (host, port), number in self.ports.items():
            if host == service_name:
                local = [re.sub(rf"(-p\s*){port}\b", rf"\g<1>{number}", w) for w in local]
        return subprocess.run(local, capture_output=True, timeout=timeout, env=self.environ(service_name),
                              cwd=self._cwd(service), check=False)

    # -- the broker --------------------------------------------------------------------------------------
    def make_certs(self) -> None:
        """deploy/tls/make-certs.sh into the directory mosquitto-init mounts as /deploy/certs."""
        out = self.host_path("mosquitto-init", "/deploy/certs")
        done = subprocess.run(["/bin/sh", str(ROOT / "deploy" / "tls" / "make-certs.sh"), str(out)],
                              capture_output=True, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                                                        "GULOU_TLS_HOSTS": "localhost,127.0.0.1"}, check=False)
        assert done.returncode == 0, done.stderr.decode()

    def init_env(self) -> dict[str, str]:
        """Where make-passwd.sh finds the auth volume and the certificates here (its defaults are the container's)."""
        return {"GULOU_MOSQUITTO_AUTH_DIR": str(self.host_path("mosquitto-init", "/mosquitto/auth")),
                "GULOU_TLS_DIR": str(self.host_path("mosquitto-init", "/deploy/certs"))}

    def start_mosquitto(self) -> None:
        """The shipped mosquitto.conf with its listeners on free loopback ports and its paths under root."""
        conf_path = self.host_path("mosquitto", "/mosquitto/config/mosquitto.conf")
        lines = []
        for line in conf_path.read_text(encoding="utf-8").splitlines():
            words = line.split()
            if words[:1] == ["listener"]:
                line = f"listener {self.port('mosquitto', words[1])} 127.0.0.1"
            elif words and not line.startswith("#"):
                line = self.translate("mosquitto", line)
            lines.append(line)
        conf = self.root / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
        if os.geteuid() == 0:
            # Started as root, Mosquitto switches to its own user, as in the image; the image's entrypoint
            # gives that user the data volume, and every directory above ours must let it through.
            user = pwd.getpwnam("mosquitto")
            for mount in self.services["mosquitto"].mounts:
                if mount.named and not mount.read_only:
                    shutil.chown(self.volume(mount.source), user.pw_uid, user.pw_gid)
        binary = require_binary("mosquitto", "mosquitto")
        log = (self.root / "logs" / "mosquitto.log").open("ab")
        self.procs["mosquitto"] = subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        for port in (self.port("mosquitto", "1883"), self.port("mosquitto", "8883")):
            try:
                wait_for_port(port, proc=self.procs["mosquitto"])
            except (RuntimeError, TimeoutError) as exc:
                raise AssertionError(f"mosquitto did not start: {exc}\n{self.log('mosquitto')}") from None

    def close(self) -> None:
        """Stop every process still running."""
        for name in list(self.procs):
            self.stop(name, timeout=15)
