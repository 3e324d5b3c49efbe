"""The gateway's settings and how the runner builds it from the registry and the secrets file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gulou.app.hj212 import Hj212Error, station_book
from gulou.devices.registry import Registry, parse_registry
from gulou.settings import Settings, parse_listen


@pytest.mark.parametrize(("text", "address"), [("0.0.0.0:2756", ("0.0.0.0", 2756)), (":9003", ("0.0.0.0", 9003)),
                                               ("[::1]:5555", ("::1", 5555)), ("127.0.0.1:0", ("127.0.0.1", 0))])
def test_listen_addresses(text: str, address: tuple[str, int]) -> None:
    assert parse_listen(text) == address


@pytest.mark.parametrize("text", ["2756", "host:", "host:port", "host:70000"])
def test_bad_listen_addresses_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_listen(text)


def test_the_section_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GULOU_HJ212__LISTEN", "0.0.0.0:2756")
    monkeypatch.setenv("GULOU_HJ212__SECRETS_FILE", str(tmp_path / "s.yaml"))
    monkeypatch.setenv("GULOU_HJ212__IDLE_TIMEOUT_S", "600")
    section = Settings().hj212
    assert section.address() == ("0.0.0.0", 2756) and section.idle_timeout_s == 600
    assert section.secrets_file == tmp_path / "s.yaml"
    monkeypatch.setenv("GULOU_HJ212__LISTEN", "nowhere")
    with pytest.raises(ValueError, match="HOST:PORT"):
        Settings()


def test_the_gateway_is_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GULOU_HJ212__LISTEN", raising=False)
    assert Settings().hj212.address() is None


def _secrets(tmp_path: Path, registry: Registry, leave_out: int = 0) -> Settings:
    mns = [d.hj212.mn for d in registry if d.hj212 is not None]
    path = tmp_path / "secrets.yaml"
    path.write_text(yaml.safe_dump({mn: "pw" for mn in mns[leave_out:]}), encoding="utf-8")
    return Settings.model_validate({"hj212": {"listen": "127.0.0.1:0", "secrets_file": path}})


def test_the_book_holds_the_registrys_stations(tmp_path: Path, registry: Registry) -> None:
    book = station_book(_secrets(tmp_path, registry), registry)
    stations = [d for d in registry if d.hj212 is not None]
    assert len(book) == len(stations) >= 2
    aq = registry.devices["aq-011"]
    assert aq.hj212 is not None and book.codes(aq.hj212.mn)["a34004"].factor == 0.001  # ng/m³ logger
    assert all(book.secret(d.hj212.mn) is not None for d in stations if d.hj212)


def test_a_station_without_its_password_stops_the_start(tmp_path: Path, registry: Registry) -> None:
    first = next(d for d in registry if d.hj212 is not None)
    assert first.hj212 is not None
    with pytest.raises(Hj212Error, match=f"{first.hj212.mn} \\({first.id}\\) checks a password"):
        station_book(_secrets(tmp_path, registry, leave_out=1), registry)
    with pytest.raises(Hj212Error, match="GULOU_HJ212__SECRETS_FILE"):
        station_book(Settings.model_validate({"hj212": {"listen": "127.0.0.1:0"}}), registry)


def test_a_registry_without_stations_has_nothing_to_serve() -> None:
    site = {"id": "air-gd-01", "kind": "air_site", "name": "点", "street": "鼓东街道", "lat": 26.08, "lon": 119.3}
    plain = parse_registry({"sites": [site], "devices": [{"id": "aq-1", "type": "air_station", "site": "air-gd-01",
                                                          "name": "微站"}]}, "plain.yaml")
    with pytest.raises(Hj212Error, match=r"no device of plain\.yaml has an hj212 block"):
        station_book(Settings(), plain)
