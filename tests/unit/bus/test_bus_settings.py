"""The bus section of the settings and the choice of implementation."""

from __future__ import annotations

import pytest

from gulou.bus.jetstream import JetStreamBus
from gulou.bus.memory import InProcessBus
from gulou.bus.registry import open_bus
from gulou.settings import Settings


def test_gulou_bus_is_the_url_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GULOU_BUS", "nats://h1:4222, nats://h2:4222")
    assert Settings().bus.urls() == ["nats://h1:4222", "nats://h2:4222"]


def test_nested_keys_and_the_flag_merge(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GULOU_BUS__PARTITIONS", "8")
    monkeypatch.setenv("GULOU_BUS__LEASE_TTL_S", "3")
    s = Settings().with_overrides(bus_url="nats://h1:4222")
    assert (s.bus.url, s.bus.partitions, s.bus.lease_ttl_s) == ("nats://h1:4222", 8, 3.0)


def test_no_url_means_the_in_process_bus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GULOU_BUS", raising=False)
    monkeypatch.delenv("GULOU_BUS__URL", raising=False)
    assert isinstance(open_bus(Settings()), InProcessBus)


def test_nats_urls_mean_jetstream_with_the_configured_shape() -> None:
    s = Settings().with_overrides(bus_url="nats://h1:4222,nats://h2:4222")
    bus = open_bus(s.model_copy(update={"bus": s.bus.model_copy(update={"partitions": 5, "rules": False})}))
    assert isinstance(bus, JetStreamBus)
    assert bus.urls == ["nats://h1:4222", "nats://h2:4222"]
    assert (bus.topology.partitions, bus.topology.partitioned) == (5, ())


def test_other_schemes_are_refused() -> None:
    with pytest.raises(ValueError, match="nats://"):
        open_bus(Settings().with_overrides(bus_url="http://h1:4222"))
