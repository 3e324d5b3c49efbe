"""Settings the operators' items of issue 12 rely on: empty spool dir, validated log level and listen address."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gulou.settings import Settings


def test_an_empty_spool_dir_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GULOU_SPOOL__DIR", "GULOU_SPOOL_DIR"):
        monkeypatch.setenv(name, "")
        assert Settings().spool.dir is None
        monkeypatch.delenv(name)


def test_log_level_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GULOU_LOG_LEVEL", "warning")
    assert Settings().log_level == "WARNING"
    monkeypatch.setenv("GULOU_LOG_LEVEL", "verbose")
    with pytest.raises(ValidationError, match="log level"):
        Settings()


def test_ops_and_embedded_broker_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GULOU_OPS__LISTEN", "0.0.0.0:9108")
    monkeypatch.setenv("GULOU_OPS__LOG_JSON", "true")
    monkeypatch.setenv("GULOU_MQTT__LISTEN", "0.0.0.0:1883")
    settings = Settings()
    assert settings.ops.listen == "0.0.0.0:9108" and settings.ops.log_json is True
    assert settings.mqtt.listen == "0.0.0.0:1883"
    assert settings.with_overrides(broker_listen="127.0.0.1:1884").mqtt.listen == "127.0.0.1:1884"
    with pytest.raises(ValidationError, match="HOST:PORT"):
        settings.with_overrides(broker_listen="everywhere")
