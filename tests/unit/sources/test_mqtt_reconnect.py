"""Reconnect waits of the MQTT source, the slot client id, and the drain option reaching the link."""

from __future__ import annotations

import random
import socket

import pytest

from gulou.app.ingest import IngestOptions, default_client_id
from gulou.backoff import Backoff
from gulou.settings import Settings
from gulou.sources.mqtt import LinkConfig, MqttSource, retry_wait


def _waits(outage_s: float, count: int, seed: int) -> list[float]:
    config = LinkConfig(client_id="c", topics=("t",))
    backoff = Backoff(config.backoff_min_s, config.backoff_max_s, rng=random.Random(seed))
    return [retry_wait(backoff, outage_s, config) for _ in range(count)]


def test_a_short_outage_retries_within_a_second() -> None:
    for seed in range(50):
        waits = _waits(0.5, 20, seed)
        assert 0.05 <= waits[0] <= 0.1  # the first retry comes at once, jittered
        assert max(waits) <= 1.0
        assert len(set(waits)) > 1  # jittered, not in lockstep


def test_a_long_outage_backs_off_to_the_cap() -> None:
    waits = _waits(60.0, 20, seed=1)
    assert max(waits) > 1.0
    assert max(waits) <= 30.0
    assert waits[-1] >= 15.0  # upper half of the capped delay


def test_the_default_client_id_is_the_slot_id_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_client_id(Settings().mqtt.client_id) == "gulou-ingest"
    monkeypatch.setenv("GULOU_MQTT__CLIENT_ID", "gulou-ingest-3")
    # The same id on any host: a re-created container resumes the slot's session.
    monkeypatch.setattr(socket, "gethostname", lambda: "container-9f2c")
    assert default_client_id(Settings().mqtt.client_id) == "gulou-ingest-3"


def test_drain_reaches_the_link() -> None:
    settings = Settings(broker="mqtt://127.0.0.1:1883")
    options = IngestOptions(client_id="gulou-ingest-2", share_group="gulou", drain=True).source_options()
    source = MqttSource.from_settings(settings, options)
    assert source is not None and source.config.drain and source.config.client_id == "gulou-ingest-2"
    plain = MqttSource.from_settings(settings, IngestOptions("a", None).source_options())
    assert plain is not None and not plain.config.drain
