"""The MQTT source built from ``settings.mqtt`` and per-process options; acknowledgement tokens."""

from __future__ import annotations

from pathlib import Path

import pytest

from gulou.settings import Settings
from gulou.sources.base import Delivery, Source, SourceOptions
from gulou.sources.mqtt import MqttSource
from gulou.sources.registry import SOURCES, open_source

OPTIONS = SourceOptions(client_id="c-1", share_group="grp", max_in_flight=500)


def test_every_source_in_the_table_is_a_source() -> None:
    assert SOURCES["mqtt"] is MqttSource
    assert all(issubclass(kind, Source) for kind in SOURCES.values())


def test_no_broker_configured_means_no_source() -> None:
    assert MqttSource.from_settings(Settings(broker=None), OPTIONS) is None
    with pytest.raises(ValueError, match="not configured"):
        open_source(Settings(broker=None), OPTIONS)
    with pytest.raises(ValueError, match="unknown source 'carrier-pigeon'"):
        open_source(Settings(broker="mqtt://127.0.0.1:1883"), OPTIONS, "carrier-pigeon")


def test_settings_and_options_shape_the_link(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret\n")
    settings = Settings(broker="mqtts://broker.example:8884", broker_username="gulou-ingest",
                        broker_password_file=secret)
    source = open_source(settings, OPTIONS)
    assert isinstance(source, MqttSource)
    assert (source.id, source.max_in_flight) == ("c-1", 500)
    assert (source.broker.host, source.broker.port, source.broker.tls) == ("broker.example", 8884, True)
    c = source.config
    assert (c.username, c.password, c.mqtt5, c.receive_maximum) == ("gulou-ingest", "s3cret", True, 500)
    assert source._filters() == ["$share/grp/gulou/+/+/telemetry", "$share/grp/gulou/+/+/status",
                                 "$share/grp/gulou/deadletters/hj212"]
    assert not source.connected and not source.stalled and source.reconnects == 0
    assert source.last_message_at is None


def test_protocol_and_plain_subscription() -> None:
    options = SourceOptions(client_id="c-2", share_group=None, protocol="3.1.1")
    source = MqttSource.from_settings(Settings(broker="mqtt://127.0.0.1:1883"), options)
    assert source is not None and source.config.mqtt5 is False
    assert source._filters() == ["gulou/+/+/telemetry", "gulou/+/+/status", "gulou/deadletters/hj212"]
    with pytest.raises(ValueError, match="MQTT protocol '4'"):
        MqttSource.from_settings(Settings(broker="mqtt://127.0.0.1:1883"), SourceOptions("c", None, protocol="4"))


def test_ack_queues_only_deliveries_that_need_one() -> None:
    source = MqttSource.from_settings(Settings(broker="mqtt://127.0.0.1:1883"), OPTIONS)
    assert source is not None
    source.ack([Delivery("gulou/air/a/telemetry", b"{}", 0.0, (7, 1)), Delivery("t", b"", 0.0, (8, 0)),
                Delivery("t", b"", 0.0, (9, 2))])
    assert list(source._acks) == [[(7, 1), (9, 2)]]
