"""The collector's inbox: order, batches, and a bound that holds the producer back."""

from __future__ import annotations

import threading

import pytest

from gulou.ingest.inbox import Inbox
from tests.waiting import wait_for


def test_items_come_out_in_order_in_batches_of_at_most_the_limit() -> None:
    inbox: Inbox[int] = Inbox(100)
    for n in range(25):
        inbox.put(n)
    assert inbox.take(10, 1.0, 0.0) == list(range(10))
    assert inbox.take(10, 1.0, 0.0) == list(range(10, 20))
    assert inbox.take(10, 1.0, 0.0) == list(range(20, 25))
    assert len(inbox) == 0


def test_an_empty_inbox_gives_an_empty_batch() -> None:
    inbox: Inbox[int] = Inbox(10)
    assert inbox.take(10, 0.01, 0.01) == []


def test_the_consumer_is_woken_by_an_item_from_another_thread() -> None:
    inbox: Inbox[str] = Inbox(10)
    got: list[str] = []
    consumer = threading.Thread(target=lambda: got.extend(inbox.take(5, 30.0, 0.0)))
    consumer.start()
    inbox.put("first")
    consumer.join(30)
    assert not consumer.is_alive() and got == ["first"]


def test_a_full_inbox_holds_the_producer_until_the_consumer_takes() -> None:
    inbox: Inbox[int] = Inbox(10)

    def produce() -> None:
        for n in range(25):
            inbox.put(n)

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    wait_for(lambda: len(inbox) == 10, 30, "the inbox to fill up")
    assert producer.is_alive(), "the producer went past the bound"
    assert len(inbox) == 10
    taken: list[int] = []
    while len(taken) < 25:
        taken += inbox.take(4, 30.0, 0.0)
        assert len(inbox) <= 10
    producer.join(30)
    assert not producer.is_alive()
    assert taken == list(range(25))


def test_the_bound_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Inbox(0)
