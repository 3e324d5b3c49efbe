"""A webhook that is down: the worker retries, keeps the notification in the store, and redelivers after a restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gulou.channels.base import ChannelContext, describe, transition_id
from gulou.channels.outbox import StoreOutbox, outbox_for
from gulou.channels.webhook import WebhookChannel
from gulou.channels.worker import ChannelWorker
from gulou.rules.alert_store import AlertStore
from gulou.rules.alerts import AlertTransition
from gulou.settings import Settings
from tests.integration.rules.helpers import Webhook

pytestmark = pytest.mark.integration
SECRET = "channel-test-secret"


def test_kept_notifications_survive_a_restart_and_go_out_signed(tmp_path: Path, fired: AlertTransition) -> None:
    hook = Webhook(SECRET, fail_first=3)
    settings = Settings(webhook_url=hook.url, webhook_secret=SECRET)
    try:
        channel = WebhookChannel.from_settings(settings, ChannelContext())
        assert channel is not None
        store = AlertStore(tmp_path / "gulou.db")
        outbox = outbox_for(channel, store)
        assert isinstance(outbox, StoreOutbox)

        async def first_run() -> None:
            worker = ChannelWorker(channel, outbox, attempts=2, backoff_s=0.01, describe=describe)
            task = asyncio.create_task(worker.run())
            worker.offer(fired)
            await asyncio.wait_for(worker.queue.join(), 10)
            task.cancel()
            assert worker.stats["kept"] == 1 and worker.stats["retries"] == 1

        asyncio.run(first_run())
        assert store.outbox_counts() == {"webhook": 1} and hook.received == []
        store.close()

        store = AlertStore(tmp_path / "gulou.db")
        worker = ChannelWorker(channel, StoreOutbox(store), describe=describe)
        assert asyncio.run(worker.redeliver_once()) == 0  # the third failure: still kept
        assert asyncio.run(worker.redeliver_once()) == 1
        assert store.outbox_counts() == {}
        store.close()
        assert hook.failed == 3 and hook.bad_signatures == 0
        assert hook.received == [{**fired.to_json(), "transition_id": transition_id(fired)}]
    finally:
        hook.close()
