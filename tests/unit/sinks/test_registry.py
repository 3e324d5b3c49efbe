"""The sink table: each sink built from its own settings section, the readings sink chosen through the table."""

from __future__ import annotations

from pathlib import Path

import pytest

from gulou.settings import Settings
from gulou.sinks.embedded import EmbeddedStore
from gulou.sinks.influx import InfluxSink
from gulou.sinks.registry import ACCOUNTING, SINKS, open_readings_sink
from gulou.tsdb.writer import Sink


def test_every_sink_in_the_table_is_a_sink_named_as_listed() -> None:
    assert ACCOUNTING in SINKS
    for name, kind in SINKS.items():
        assert issubclass(kind, Sink), name
        assert "from_settings" in vars(kind), f"{name} must build itself from its settings section"


def test_no_sink_configured_means_readings_stay_in_the_embedded_store(tmp_path: Path) -> None:
    assert open_readings_sink(Settings(store=tmp_path / "g.db", influx_url=None)) is None


def test_influx_section_selects_the_influx_sink(tmp_path: Path) -> None:
    settings = Settings(store=tmp_path / "g.db", influx_url="http://127.0.0.1:9", influx_org="gulou",
                        influx_bucket="gulou", influx_token="t")
    sink = open_readings_sink(settings)
    try:
        assert isinstance(sink, InfluxSink)
        assert (sink.url, sink.org, sink.bucket) == ("http://127.0.0.1:9", "gulou", "gulou")
    finally:
        if sink is not None:
            sink.close()


def test_nested_variables_configure_the_sink(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GULOU_INFLUX__URL", "http://127.0.0.1:9")
    monkeypatch.setenv("GULOU_INFLUX__ORG", "o")
    monkeypatch.setenv("GULOU_INFLUX__BUCKET", "b")
    sink = InfluxSink.from_settings(Settings(store=tmp_path / "g.db"))
    assert sink is not None and sink.bucket == "b"
    sink.close()


def test_half_configured_sink_is_an_error_naming_what_is_missing(tmp_path: Path) -> None:
    settings = Settings(store=tmp_path / "g.db", influx_url="http://127.0.0.1:9", influx_bucket="gulou")
    with pytest.raises(ValueError, match="GULOU_INFLUX_URL is set but GULOU_INFLUX_ORG is not"):
        open_readings_sink(settings)


def test_embedded_store_from_settings_creates_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "g.db"
    store = EmbeddedStore.from_settings(Settings(store=path))
    try:
        assert path.exists() and store.stats()["received"] == 0
    finally:
        store.close()
