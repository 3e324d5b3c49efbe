"""The store channel records the alert in SQLite and its ``alerts`` line in a real InfluxDB-protocol store."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gulou.channels.base import ChannelContext
from gulou.channels.store import StoreChannel
from gulou.rules.alert_store import AlertStore
from gulou.rules.alerts import AlertTransition
from gulou.settings import Settings
from gulou.sinks.influx import InfluxSink
from tests.tsdb import VictoriaMetrics

pytestmark = pytest.mark.integration


def test_alert_row_history_and_series(tmp_path: Path, victoria_metrics: VictoriaMetrics,
                                      fired: AlertTransition) -> None:
    store = AlertStore(tmp_path / "gulou.db")
    sink = InfluxSink(victoria_metrics.url, None, "gulou", None)
    try:
        channel = StoreChannel.from_settings(Settings(), ChannelContext(store=store, lines=sink))
        assert channel is not None
        asyncio.run(channel.send(fired))
        rows = store.alerts()
        assert [(r["alert_id"], r["state"]) for r in rows] == [(fired.alert.alert_id, "firing")]
        assert [e["event"] for e in store.history(fired.alert.alert_id)] == ["firing"]
    finally:
        sink.close()
        store.close()
    series = victoria_metrics.export("alerts_value")
    assert len(series) == 1
    labels = series[0]["metric"]
    assert (labels["rule_id"], labels["device"], labels["state"]) == ("t-rule", "bin-001-rec", "firing")
    assert series[0]["values"] == [75.0]
    assert series[0]["timestamps"] == [int(fired.alert.first_seen.timestamp() * 1000)]
