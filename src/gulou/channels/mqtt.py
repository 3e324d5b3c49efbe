"""The MQTT channel: JSON to ``gulou/alerts/<domain>/<device_id>`` at QoS 1 on the channel's own connection.

The payload carries the transition's deterministic ``transition_id`` so a subscriber can drop a resend.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import uuid
from typing import Any, Self

import aiomqtt

from gulou.backoff import Backoff
from gulou.channels.base import Channel, ChannelContext, DeliveryError, notification_body
from gulou.devices.contract import TOPIC_ROOT
from gulou.rules.alerts import AlertTransition
from gulou.settings import BrokerAddress, Settings

log = logging.getLogger(__name__)
ALERT_TOPIC_ROOT = f"{TOPIC_ROOT}/alerts"


def alert_topic(transition: AlertTransition) -> str:
    """``gulou/alerts/<domain>/<device_id>``."""
    return f"{ALERT_TOPIC_ROOT}/{transition.alert.domain}/{transition.alert.device_id}"


def mqtt_client(settings: Settings, broker: BrokerAddress, client_id: str, **kwargs: Any) -> aiomqtt.Client:
    """An aiomqtt client for the broker with the configured credentials and TLS."""
    tls = ssl.create_default_context(cafile=str(settings.mqtt.ca_file) if settings.mqtt.ca_file else None) \
        if broker.tls else None
    return aiomqtt.Client(broker.host, broker.port, identifier=client_id, username=settings.mqtt.username,
                          password=settings.mqtt.secret(), tls_context=tls, **kwargs)


class MqttChannel(Channel):
    """Publishes each notification; ``run`` holds the connection and reconnects with backoff."""

    name = "mqtt"

    def __init__(self, settings: Settings, broker: BrokerAddress, client_id: str | None = None) -> None:
        self.settings, self.broker = settings, broker
        self.client_id = client_id or f"{settings.mqtt.client_id}-rules-alerts-{uuid.uuid4().hex[:8]}"
        self._client: aiomqtt.Client | None = None
        self.connected = asyncio.Event()

    @classmethod
    def from_settings(cls, settings: Settings, context: ChannelContext) -> Self | None:
        """On when the service has a broker (the configured one or the embedded one)."""
        return None if context.broker is None else cls(settings, context.broker)

    def ready(self) -> bool:
        """Connected to the broker."""
        return self.connected.is_set()

    async def run(self) -> None:
        """Hold a connection for the publishes, reconnecting with jittered backoff."""
        backoff = Backoff(0.5, 30.0)
        while True:
            try:
                async with mqtt_client(self.settings, self.broker, self.client_id) as client:
                    self._client = client
                    self.connected.set()
                    backoff.reset()
                    await asyncio.Event().wait()  # publishes use the connection until it drops
            except aiomqtt.MqttError as exc:
                log.warning("alert publisher disconnected: %s", exc)
            finally:
                self.connected.clear()
                self._client = None
            await backoff.sleep()

    async def send(self, transition: AlertTransition) -> None:
        """Publish one notification at QoS 1."""
        client = self._client
        if client is None or not self.connected.is_set():
            raise DeliveryError("not connected to the broker")
        try:
            await client.publish(alert_topic(transition), notification_body(transition), qos=1)
        except Exception as exc:
            raise DeliveryError(f"MQTT publish failed: {exc}") from exc
