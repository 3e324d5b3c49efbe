"""Registry loading: the shipped deployment, and file:line errors for broken files."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from gulou.cli import cli
from gulou.devices.catalog import DOMAINS
from gulou.devices.registry import STREETS, Registry, RegistryError, load_registry
from gulou.devices.types.smart_bin import BIN_CATEGORIES

GOOD = """\
sites:
- id: cp-1
  kind: collection_point
  name: 冶山社区投放点
  street: 鼓东街道
  lat: 26.09
  lon: 119.30
- id: sec-1
  kind: river_section
  name: 白马河测试段
  street: 鼓西街道
  lat: 26.08
  lon: 119.28
  river: 白马河
  target_class: IV
devices:
- id: bin-1
  type: smart_bin
  site: cp-1
  name: 厨余桶
  category: 厨余垃圾
- id: wq-1
  type: water_station
  site: sec-1
  name: 水质站
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "reg.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_registry_is_a_realistic_gulou_deployment(registry: Registry) -> None:
    assert len(registry) >= 300
    by_domain = Counter(d.domain for d in registry)
    assert set(by_domain) == set(DOMAINS)
    assert {d.street for d in registry} == set(STREETS)
    rivers = {d.site.river for d in registry.by_domain("water")}
    assert {"白马河", "安泰河", "东西河", "晋安河"} <= rivers
    assert all(d.site.target_class for d in registry.by_domain("water"))
    assert any(d.site.drinking_source for d in registry.by_domain("water"))
    points = {d.site.id for d in registry if d.type == "smart_bin"}
    for point in points:
        cats = {d.category for d in registry if d.site.id == point and d.type == "smart_bin"}
        assert cats == set(BIN_CATEGORIES), point
    assert all(d.site.capacity for d in registry.by_domain("parking"))
    assert all(d.site.storeys and d.site.structure_type for d in registry.by_domain("structure"))


def test_device_inherits_site(tmp_path: Path) -> None:
    reg = load_registry(_write(tmp_path, GOOD))
    wq = reg.get("wq-1")
    assert wq is not None and wq.street == "鼓西街道" and wq.lat == 26.08 and wq.interval_s == 300
    assert wq.as_dict()["target_class"] == "IV"


@pytest.mark.parametrize(
    ("old", "new", "line", "fragment"),
    [
        ("- id: wq-1\n", "- id: bin-1\n", 22, "duplicate device id 'bin-1'"),
        ("  lat: 26.08\n", "  lat: 36.08\n", 12, "outside Fuzhou"),
        ("  street: 鼓西街道\n", "  street: 台江区\n", 11, "unknown street '台江区'"),
        ("  site: sec-1\n", "  site: nowhere\n", 24, "unknown site 'nowhere'"),
        ("  type: water_station\n", "  type: radar\n", 23, "unknown device type 'radar'"),
        ("  category: 厨余垃圾\n", "  colour: green\n", 21, "colour"),
        ("  target_class: IV\n", "  target_class: VI\n", 15, "target_class"),
    ],
)
def test_errors_name_file_and_line(tmp_path: Path, old: str, new: str, line: int, fragment: str) -> None:
    assert old in GOOD
    path = _write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(RegistryError) as err:
        load_registry(path)
    assert f"{path}:{line}:" in str(err.value)
    assert fragment in str(err.value)


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="cannot read"):
        load_registry(tmp_path / "missing.yaml")
    with pytest.raises(RegistryError, match="not valid YAML"):
        load_registry(_write(tmp_path, "sites: [\n"))
    with pytest.raises(RegistryError, match="expected a mapping"):
        load_registry(_write(tmp_path, "- 1\n"))


def test_cli_list_json_filters_by_domain() -> None:
    result = CliRunner().invoke(cli, ["devices", "list", "--domain", "water", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert rows and all(r["domain"] == "water" for r in rows)
    assert {"id", "domain", "name", "street", "site", "lat", "lon", "interval_s"} <= set(rows[0])


def test_cli_check_reports_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("  lat: 26.08\n", "  lat: 99\n", 1))
    result = CliRunner().invoke(cli, ["devices", "check", str(path)])
    assert result.exit_code != 0
    assert f"{path}:12:" in result.output


def test_cli_generate_writes_loadable_registry(tmp_path: Path) -> None:
    out = tmp_path / "big.yaml"
    result = CliRunner().invoke(cli, ["devices", "generate", "--count", "2000", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["devices"] == 2000
    reg = load_registry(out)
    assert {d.domain for d in reg} == set(DOMAINS)
