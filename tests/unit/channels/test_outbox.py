"""The one outbox: bounded in memory, durable in the alert store, and the one rule choosing between them."""

from __future__ import annotations

from pathlib import Path

from gulou.channels.log import LogChannel
from gulou.channels.outbox import MemoryOutbox, StoreOutbox, outbox_for
from gulou.channels.store import StoreChannel
from gulou.rules.alert_store import AlertStore
from gulou.rules.alerts import AlertTransition
from tests.unit.channels.test_worker import renamed


def test_the_memory_outbox_keeps_a_bounded_number_and_counts_what_it_drops() -> None:
    outbox: MemoryOutbox[list[str]] = MemoryOutbox(limit=2, size=len)
    for index in range(4):
        outbox.keep("aqi", [f"l{index}a", f"l{index}b"], 4, "down")
    assert [p[0] for _, p in outbox.pending("aqi")] == ["l2a", "l3a"]
    assert (outbox.dropped_items, outbox.dropped_size) == (2, 4)
    first_id = outbox.pending("aqi")[0][0]
    outbox.delivered(first_id)
    assert len(outbox) == 1


def test_the_memory_outbox_keeps_channels_apart() -> None:
    outbox: MemoryOutbox[str] = MemoryOutbox()
    outbox.keep("webhook", "a", 4, "HTTP 500")
    outbox.keep("mqtt", "b", 4, "not connected")
    outbox.keep("webhook", "c", 4, "HTTP 500")
    assert [item for _, item in outbox.pending("webhook")] == ["a", "c"]
    assert [item for _, item in outbox.pending("mqtt")] == ["b"]
    assert outbox.pending("webhook", limit=1)[0][1] == "a"


def test_the_store_outbox_survives_a_restart(tmp_path: Path, fired: AlertTransition) -> None:
    store = AlertStore(tmp_path / "gulou.db")
    outbox = StoreOutbox(store)
    outbox.keep("webhook", fired, 4, "HTTP 500 " + "x" * 1000)
    outbox.keep("webhook", renamed(fired, "second"), 4, "HTTP 500")
    store.close()
    store = AlertStore(tmp_path / "gulou.db")
    outbox = StoreOutbox(store)
    (first_id, first), (_, second) = outbox.pending("webhook")
    assert first == fired and second.alert.alert_id == "second" and len(outbox) == 2
    outbox.delivered(first_id)
    assert [t.alert.alert_id for _, t in outbox.pending("webhook")] == ["second"]
    store.close()


def test_a_bounded_store_outbox_drops_the_oldest(tmp_path: Path, fired: AlertTransition) -> None:
    store = AlertStore(tmp_path / "gulou.db")
    outbox = StoreOutbox(store, limit=2)
    for index in range(3):
        outbox.keep("mqtt" if index % 2 else "webhook", renamed(fired, str(index)), 4, "down")
    assert outbox.dropped_items == 1 and len(outbox) == 2
    assert store.outbox_counts() == {"mqtt": 1, "webhook": 1}
    assert [t.alert.alert_id for _, t in outbox.pending("webhook")] == ["2"]
    store.close()


def test_outbox_for_keeps_durably_unless_the_channel_writes_the_store(tmp_path: Path) -> None:
    store = AlertStore(tmp_path / "gulou.db")
    assert isinstance(outbox_for(LogChannel(), store), StoreOutbox)
    assert isinstance(outbox_for(StoreChannel(store), store), MemoryOutbox)
    assert isinstance(outbox_for(LogChannel(), None), MemoryOutbox)
    store.close()
