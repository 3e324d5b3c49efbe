"""Channels are chosen through the table, each from its own settings section."""

from __future__ import annotations

from pathlib import Path

from gulou.channels.base import ChannelContext
from gulou.channels.registry import CHANNELS, build_channels
from gulou.channels.webhook import WebhookChannel
from gulou.rules.alert_store import AlertStore
from gulou.settings import BrokerAddress, Settings
from gulou.workflow.channel import WorkflowChannel


def test_unconfigured_channels_are_left_out() -> None:
    assert [c.name for c in build_channels(Settings(), ChannelContext())] == ["log"]


def test_every_configured_channel_is_built_in_table_order(tmp_path: Path) -> None:
    settings = Settings(webhook_url="http://127.0.0.1:9/hook", webhook_secret="s",
                        dingtalk_webhook="https://robot.example/send?access_token=x", dingtalk_secret="SEC",
                        wecom_webhook="https://robot.example/wecom")
    store = AlertStore(tmp_path / "gulou.db")
    context = ChannelContext(store=store, broker=BrokerAddress(host="127.0.0.1", port=1883, tls=False))
    channels = build_channels(settings, context)
    assert [c.name for c in channels] == list(CHANNELS) == ["log", "store", "mqtt", "webhook", "workflow"]
    webhook = next(c for c in channels if isinstance(c, WebhookChannel))
    assert (webhook.url, webhook.secret) == ("http://127.0.0.1:9/hook", "s")
    workflow = next(c for c in channels if isinstance(c, WorkflowChannel))
    assert sorted(workflow.service.senders) == ["dingtalk", "wecom"]
    workflow.service.store.close()
    store.close()


def test_table_names_match_the_channels() -> None:
    assert all(cls.name == name for name, cls in CHANNELS.items())
