"""`gulou dashboards push` through grafana-client against a small stand-in for Grafana's HTTP API."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from click.testing import CliRunner

from gulou.cli import cli
from gulou.dashboards.common import DATASOURCE_UID, FOLDER_TITLE, FOLDER_UID
from gulou.dashboards.generate import builders


class FakeGrafana:
    """State of the stand-in: datasources by uid, folders by uid, dashboards by uid, and every call."""

    def __init__(self) -> None:
        self.datasources: dict[str, dict[str, Any]] = {}
        self.folders: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self.auth: set[str] = set()
        self.next_id = 1


def _handler(state: FakeGrafana) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length) or b"{}")

        def _route(self, method: str) -> None:
            state.calls.append((method, self.path))
            state.auth.add(self.headers.get("Authorization", ""))
            parts = self.path.split("?")[0].strip("/").split("/")
            if parts[:3] == ["api", "datasources", "uid"] and len(parts) == 4:
                uid = parts[3]
                if method == "GET":
                    if uid in state.datasources:
                        return self._send(200, state.datasources[uid])
                    return self._send(404, {"message": "Data source not found"})
                if method == "PUT" and uid in state.datasources:
                    state.datasources[uid] = {**self._body(), "id": state.datasources[uid]["id"]}
                    return self._send(200, {"message": "Datasource updated"})
            if parts == ["api", "datasources"] and method == "POST":
                body = self._body()
                if body["uid"] in state.datasources:
                    return self._send(409, {"message": "data source with the same uid already exists"})
                state.datasources[body["uid"]] = {**body, "id": state.next_id}
                state.next_id += 1
                return self._send(200, {"message": "Datasource added", "id": state.next_id - 1})
            if parts[:2] == ["api", "folders"]:
                if method == "GET" and len(parts) == 3:
                    if parts[2] in state.folders:
                        return self._send(200, state.folders[parts[2]])
                    return self._send(404, {"message": "folder not found"})
                if method == "POST" and len(parts) == 2:
                    body = self._body()
                    state.folders[body["uid"]] = {"uid": body["uid"], "title": body["title"]}
                    return self._send(200, state.folders[body["uid"]])
            if parts == ["api", "dashboards", "db"] and method == "POST":
                body = self._body()
                assert body["overwrite"] is True and body["folderUid"] in state.folders
                uid = body["dashboard"]["uid"]
                version = state.dashboards.get(uid, {}).get("version", 0) + 1
                state.dashboards[uid] = {**body["dashboard"], "version": version, "folderUid": body["folderUid"]}
                return self._send(200, {"status": "success", "uid": uid, "version": version})
            return self._send(404, {"message": f"no route {method} {self.path}"})

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def do_PUT(self) -> None:
            self._route("PUT")

    return Handler


@pytest.fixture
def grafana() -> Iterator[tuple[str, FakeGrafana]]:
    state = FakeGrafana()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()


def _push(url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("GULOU_GRAFANA_TOKEN", "test-token")
    monkeypatch.setenv("GULOU_INFLUX_URL", "http://influxdb:8086")
    monkeypatch.setenv("GULOU_INFLUX_BUCKET", "gulou")
    monkeypatch.setenv("GULOU_INFLUX_TOKEN", "influx-secret")
    return CliRunner().invoke(cli, ["dashboards", "push", "--url", url, "--json"])


def _state(fake: FakeGrafana) -> Any:
    boards = {uid: {k: v for k, v in b.items() if k != "version"} for uid, b in fake.dashboards.items()}
    return json.dumps([fake.datasources, fake.folders, boards], sort_keys=True)


def test_push_creates_datasource_folder_and_dashboards(grafana: tuple[str, FakeGrafana],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    url, fake = grafana
    result = _push(url, monkeypatch)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{"):])
    assert summary["datasource"] == "created" and summary["folder"] == "created"
    assert set(summary["dashboards"]) == set(fake.dashboards) and len(fake.dashboards) == len(builders())
    ds = fake.datasources[DATASOURCE_UID]
    assert ds["jsonData"]["dbName"] == "gulou" and ds["url"] == "http://influxdb:8086"
    assert ds["secureJsonData"]["httpHeaderValue1"] == "Token influx-secret"
    assert fake.folders[FOLDER_UID]["title"] == FOLDER_TITLE
    assert all(b["folderUid"] == FOLDER_UID for b in fake.dashboards.values())
    assert fake.auth == {"Bearer test-token"}
    assert "dashboard gulou-overview" in result.output  # progress per item


def test_push_twice_reaches_the_same_state(grafana: tuple[str, FakeGrafana], monkeypatch: pytest.MonkeyPatch) -> None:
    url, fake = grafana
    assert _push(url, monkeypatch).exit_code == 0
    first = _state(fake)
    calls = len(fake.calls)
    second = _push(url, monkeypatch)
    assert second.exit_code == 0, second.output
    summary = json.loads(second.output[second.output.index("{"):])
    assert summary["datasource"] == "updated" and summary["folder"] == "unchanged"
    assert _state(fake) == first
    assert len(fake.datasources) == 1 and len(fake.folders) == 1
    assert ("POST", "/api/datasources") not in fake.calls[calls:]
    assert all(b["version"] == 2 for b in fake.dashboards.values())


def test_push_reports_an_unreachable_grafana(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.servers import free_port

    result = _push(f"http://127.0.0.1:{free_port()}", monkeypatch)
    assert result.exit_code == 1
    assert "Error:" in result.output and "Traceback" not in result.output


def test_push_needs_the_influx_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GULOU_INFLUX_URL", raising=False)
    monkeypatch.delenv("GULOU_INFLUX_BUCKET", raising=False)
    monkeypatch.chdir("/tmp")  # no .env here
    result = CliRunner().invoke(cli, ["dashboards", "push", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 2 and "GULOU_INFLUX_URL" in result.output
