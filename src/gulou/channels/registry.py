"""The alert channels by name: adding a channel is one module and one line in ``CHANNELS``."""

from __future__ import annotations

from gulou.channels.base import Channel, ChannelContext
from gulou.channels.log import LogChannel
from gulou.channels.mqtt import MqttChannel
from gulou.channels.store import StoreChannel
from gulou.channels.webhook import WebhookChannel
from gulou.settings import Settings
from gulou.workflow.channel import WorkflowChannel

# In delivery order; each is built from its own settings section and left out when not configured.
CHANNELS: dict[str, type[Channel]] = {
    "log": LogChannel,
    "store": StoreChannel,
    "mqtt": MqttChannel,
    "webhook": WebhookChannel,
    # DingTalk and WeCom robots are fed by the workflow: routing, silences, rate limits, digests, escalation.
    "workflow": WorkflowChannel,
}


def build_channels(settings: Settings, context: ChannelContext) -> list[Channel]:
    """Every channel the settings and context switch on."""
    built = (cls.from_settings(settings, context) for cls in CHANNELS.values())
    return [channel for channel in built if channel is not None]
