"""A real NATS JetStream cluster for integration tests: local processes on free loopback ports."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.servers import free_port, require_binary, wait_for_port

CLUSTER_NAME = "gulou-test"


@dataclass
class NatsNode:
    """One nats-server process of the cluster; ``kill`` and ``start`` keep its ports and store."""

    binary: str
    name: str
    port: int
    cluster_port: int
    http_port: int
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Client URL of this node."""
        return f"nats://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def write_config(self, routes: list[int]) -> Path:
        """The node's configuration file: JetStream with its own store, routes to every node (cluster > 1)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "nats.conf"
        lines = [
            f"server_name: {self.name}",
            f"listen: 127.0.0.1:{self.port}",
            f"http: 127.0.0.1:{self.http_port}",
            f'jetstream {{ store_dir: "{self.workdir / "store"}" }}',
        ]
        if len(routes) > 1:
            route_urls = ", ".join(f'"nats-route://127.0.0.1:{p}"' for p in routes)
            lines.append(f"cluster {{ name: {CLUSTER_NAME}, listen: 127.0.0.1:{self.cluster_port}, "
                         f"routes: [{route_urls}] }}")
        conf.write_text("\n".join(lines) + "\n")
        return conf

    def start(self) -> None:
        """Start (or restart) the node with the configuration written by the cluster."""
        log = (self.workdir / "nats.log").open("ab")
        self.proc = subprocess.Popen([self.binary, "-c", str(self.workdir / "nats.conf")],
                                     stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_for_port(self.port, timeout=20, proc=self.proc)

    def kill(self) -> None:
        """SIGKILL: no goodbye to the cluster, no flush."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        """Graceful stop (lame duck skipped: SIGTERM)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def monitor(self, path: str) -> dict[str, Any]:
        """A JSON document from the node's monitoring port (``/jsz``, ``/healthz``, ...)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=2) as resp:
            data: dict[str, Any] = json.loads(resp.read())
            return data

    def healthy(self, server_only: bool = False) -> bool:
        """JetStream on this node is up and current with its cluster (``/healthz`` says ok).

        ``server_only``: the server and its meta leader only. nats-server 2.9 keeps reporting an idle consumer
        "not current" on a node restarted after SIGKILL until the consumer sees traffic, so the full check is
        for a fresh cluster and ``server_only`` plus ``stream_state`` for a restarted node.
        """
        return self.health(server_only) == "ok"

    def health(self, server_only: bool = False) -> str:
        """``ok``, or why ``/healthz`` is not ok (for failure messages)."""
        try:
            return str(self.monitor("/healthz?js-server-only=true" if server_only else "/healthz").get("status"))
        except urllib.error.HTTPError as exc:
            return exc.read().decode("utf-8", "replace").strip()
        except (OSError, ValueError) as exc:
            return repr(exc)

    def stream_state(self, stream: str) -> dict[str, Any] | None:
        """The node's own replica of ``stream`` (messages, last_seq, ...), or None when it has none yet."""
        try:
            jsz = self.monitor("/jsz?accounts=true&streams=true")
        except (OSError, ValueError):
            return None
        for account in jsz.get("account_details") or []:
            for detail in account.get("stream_detail") or []:
                if detail.get("name") == stream:
                    state: dict[str, Any] = detail.get("state") or {}
                    return state
        return None


@dataclass
class NatsCluster:
    """A JetStream cluster of ``size`` nodes (1 gives a single server) on free loopback ports."""

    nodes: list[NatsNode] = field(default_factory=list)

    @property
    def urls(self) -> list[str]:
        """Client URLs of every node, for ``--bus``."""
        return [n.url for n in self.nodes]

    @property
    def bus_url(self) -> str:
        """Comma-separated URLs, the form ``GULOU_BUS`` takes."""
        return ",".join(self.urls)

    def node(self, name: str) -> NatsNode:
        """The node called ``name`` (``n0``, ``n1``, ...)."""
        return next(n for n in self.nodes if n.name == name)

    def wait_healthy(self, timeout: float = 60.0, server_only: bool = False) -> None:
        """Block until every running node reports JetStream healthy and a meta leader is known."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            running = [n for n in self.nodes if n.running]
            if running and all(n.healthy(server_only) for n in running) and self.meta_leader() is not None:
                return
            time.sleep(0.1)
        states = {n.name: n.health(server_only) if n.running else "not running" for n in self.nodes}
        raise TimeoutError(f"JetStream cluster not healthy after {timeout} s: {states}")

    def restart(self, name: str, timeout: float = 60.0) -> NatsNode:
        """Start a killed node again and wait until it is back in the cluster (server-level health)."""
        node = self.node(name)
        node.start()
        self.wait_healthy(timeout, server_only=True)
        return node

    def meta_leader(self) -> str | None:
        """Name of the JetStream meta leader as one running node sees it (None while electing)."""
        for n in self.nodes:
            if not n.running:
                continue
            try:
                jsz = n.monitor("/jsz")
            except (OSError, ValueError):
                continue
            meta = jsz.get("meta_cluster") or {}
            if len(self.nodes) == 1:
                return n.name if jsz.get("config") else None
            leader = meta.get("leader")
            if leader:
                return str(leader)
        return None

    def start(self) -> None:
        """Start every node and wait until the cluster is healthy."""
        routes = [n.cluster_port for n in self.nodes]
        for n in self.nodes:
            n.write_config(routes)
        for n in self.nodes:
            n.start()
        self.wait_healthy()

    def stop(self) -> None:
        """Stop every node that still runs."""
        for n in self.nodes:
            n.stop()


@contextmanager
def nats_cluster(workdir: Path, size: int = 3) -> Iterator[NatsCluster]:
    """Run a ``size``-node JetStream cluster from Debian's ``nats-server`` for the duration of the block."""
    binary = require_binary("nats-server", "nats-server")
    cluster = NatsCluster([
        NatsNode(binary, f"n{i}", free_port(), free_port(), free_port(), workdir / f"n{i}") for i in range(size)
    ])
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
