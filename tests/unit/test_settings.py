"""Settings: nested sections, the documented flat names, flags on top, secrets from files."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from gulou.settings import LEGACY, Section, Settings


def test_nested_variables_set_a_section(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GULOU_INFLUX__URL", "http://127.0.0.1:8428")
    monkeypatch.setenv("GULOU_INFLUX__BUCKET", "b")
    s = Settings()
    assert s.influx.url == "http://127.0.0.1:8428"
    assert s.influx.bucket == "b"


def test_every_documented_flat_name_still_works(monkeypatch: pytest.MonkeyPatch) -> None:
    # Names whose section validates the value's form get a well-formed one.
    special = {"broker": "mqtt://127.0.0.1:1883", "spool_max_bytes": "42", "broker_listen": "0.0.0.0:1883",
               "bus_url": "nats://127.0.0.1:4222", "database_url": "postgresql://127.0.0.1:5432/gulou"}
    values = {name: special.get(name, f"v-{name}") for name in LEGACY}
    for name, value in values.items():
        monkeypatch.setenv(f"GULOU_{name.upper()}", value)
    s = Settings()
    for name, (section, key) in LEGACY.items():
        got = getattr(getattr(s, section), key)
        got = got.get_secret_value() if hasattr(got, "get_secret_value") else got
        assert str(got) == values[name], name


def test_nested_name_wins_over_flat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GULOU_INFLUX_URL", "http://old")
    monkeypatch.setenv("GULOU_INFLUX__URL", "http://new")
    assert Settings().influx.url == "http://new"


def test_flags_override_and_use_flat_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GULOU_BROKER", "mqtt://127.0.0.1:1883")
    monkeypatch.setenv("GULOU_INFLUX_ORG", "gulou")
    s = Settings().with_overrides(broker="mqtt://127.0.0.1:2883", influx_url="http://x", store=None)
    assert s.mqtt.url == "mqtt://127.0.0.1:2883"
    assert s.influx.url == "http://x"
    assert s.influx.org == "gulou"  # the rest of the section is kept


def test_secret_from_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n", encoding="utf-8")
    monkeypatch.setenv("GULOU_BROKER_PASSWORD_FILE", str(secret))
    assert Settings().mqtt.secret() == "s3cret"


def test_bad_broker_url_is_refused() -> None:
    with pytest.raises(ValidationError, match="scheme"):
        Settings(broker="http://example")


def test_unknown_key_in_a_section_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GULOU_INFLUX__URLL", "http://typo")
    with pytest.raises(ValidationError, match="urll"):
        Settings()


class _KafkaSection(Section):
    brokers: str
    topic: str = "gulou"


def test_a_plugin_declares_its_own_section(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GULOU_KAFKA__BROKERS", "127.0.0.1:9092")
    section = Settings().plugin_section("kafka", _KafkaSection)
    assert section.brokers == "127.0.0.1:9092"
    assert section.topic == "gulou"
    monkeypatch.setenv("GULOU_KAFKA__TYPO", "x")
    with pytest.raises(ValidationError, match="typo"):
        Settings().plugin_section("kafka", _KafkaSection)
