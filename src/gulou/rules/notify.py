"""Alert delivery: channels (MQTT, webhook, DingTalk, WeCom, store, log) behind bounded, retrying workers."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from gulou.rules.alert_store import AlertStore
from gulou.rules.alerts import Alert, AlertTransition

log = logging.getLogger(__name__)
ALERT_TOPIC_ROOT = "gulou/alerts"
SEVERITY_ZH = {"informational": "提示", "low": "低", "medium": "中", "high": "高", "critical": "严重"}
EVENT_ZH = {"firing": "告警", "renotify": "持续告警", "resolved": "已恢复"}
Publisher = Callable[[str, bytes], Awaitable[None]]


class DeliveryError(Exception):
    """A channel could not deliver a notification (the worker retries, then keeps it for later)."""


class Channel(ABC):
    """Somewhere alerts go. ``send`` returns once delivered, else raises."""

    name: str = "channel"

    @abstractmethod
    async def send(self, payload: dict[str, Any]) -> None:
        """Deliver one notification (``AlertTransition.to_json()``)."""


def transition_from_json(payload: dict[str, Any]) -> AlertTransition:
    """Rebuild a transition from its JSON form (for the outbox)."""
    data = {k: v for k, v in payload.items() if k not in ("event", "source")}
    return AlertTransition(payload["event"], Alert.model_validate(data))


def alert_topic(payload: dict[str, Any]) -> str:
    """``gulou/alerts/<domain>/<device_id>``."""
    return f"{ALERT_TOPIC_ROOT}/{payload['domain']}/{payload['device_id']}"


def sign_body(secret: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of the body>`` for the ``X-Gulou-Signature`` header."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def dingtalk_signed_url(url: str, secret: str, now_ms: int | None = None) -> str:
    """DingTalk robot "加签": append timestamp and sign = base64(HMAC-SHA256(secret, 'ts\\nsecret'))."""
    ts = str(now_ms if now_ms is not None else int(time.time() * 1000))
    digest = hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()
    sign = urllib.parse.quote_plus(base64.b64encode(digest).decode())
    return f"{url}{'&' if '?' in url else '?'}timestamp={ts}&sign={sign}"


def markdown(payload: dict[str, Any]) -> tuple[str, str]:
    """Title and markdown text of a notification for group robots."""
    event = EVENT_ZH.get(payload["event"], payload["event"])
    title = f"[{event}] {payload['message']}"
    lines = [
        f"### {event}：{payload['message']}",
        f"- 规则：{payload['rule_id']}（{SEVERITY_ZH.get(payload['severity'], payload['severity'])}）",
        f"- 地点：{payload['street']} {payload['site_name']}（{payload['device_id']}）",
        f"- 数值：{_num(payload.get('value'))}，限值：{_num(payload.get('limit'))}，"
        f"超标倍数：{_num(payload.get('exceedance'))}",
        f"- 依据：{payload['standard']}",
        f"- 首次：{payload['first_seen']}，最近：{payload['last_seen']}",
        f"> {payload['message_en']}",
    ]
    return title[:60], "\n".join(lines)


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def _post_json(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> bytes:
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json; charset=utf-8", **headers})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return bytes(response.read())
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DeliveryError(f"unreachable: {getattr(exc, 'reason', exc)}") from None


class LogChannel(Channel):
    """Writes every notification to the log."""

    name = "log"

    async def send(self, payload: dict[str, Any]) -> None:
        """Log one line per notification."""
        level = logging.WARNING if payload["event"] != "resolved" else logging.INFO
        log.log(level, "alert %s %s [%s] %s", payload["event"], payload["rule_id"], payload["device_id"],
                payload["message_en"])


class MqttChannel(Channel):
    """Publishes JSON to ``gulou/alerts/<domain>/<device_id>`` through a publisher (QoS 1 client)."""

    name = "mqtt"

    def __init__(self, publish: Publisher) -> None:
        self._publish = publish

    async def send(self, payload: dict[str, Any]) -> None:
        """Publish one notification."""
        try:
            await self._publish(alert_topic(payload), json.dumps(payload, ensure_ascii=False).encode())
        except DeliveryError:
            raise
        except Exception as exc:
            raise DeliveryError(f"MQTT publish failed: {exc}") from exc


class WebhookChannel(Channel):
    """POSTs the JSON body with ``X-Gulou-Signature: sha256=<hex HMAC>``."""

    name = "webhook"

    def __init__(self, url: str, secret: str | None, timeout_s: float = 5.0) -> None:
        self.url, self.secret, self.timeout_s = url, secret, timeout_s

    async def send(self, payload: dict[str, Any]) -> None:
        """POST one notification."""
        body = json.dumps(payload, ensure_ascii=False).encode()
        headers = {"X-Gulou-Signature": sign_body(self.secret, body)} if self.secret else {}
        await asyncio.to_thread(_post_json, self.url, body, headers, self.timeout_s)


class _RobotChannel(Channel):
    def __init__(self, url: str, secret: str | None = None, timeout_s: float = 5.0) -> None:
        self.url, self.secret, self.timeout_s = url, secret, timeout_s

    def body(self, payload: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def target(self) -> str:
        return self.url

    async def send(self, payload: dict[str, Any]) -> None:
        """POST the robot message; the robot answers 200 with a non-zero errcode on refusal."""
        data = json.dumps(self.body(payload), ensure_ascii=False).encode()
        answer = await asyncio.to_thread(_post_json, self.target(), data, {}, self.timeout_s)
        try:
            code = json.loads(answer or b"{}").get("errcode", 0)
        except (ValueError, AttributeError):
            code = 0
        if code:
            raise DeliveryError(f"{self.name} robot refused the message: errcode {code}")


class DingTalkChannel(_RobotChannel):
    """DingTalk group robot, markdown msgtype, optional signed URL (timestamp + sign)."""

    name = "dingtalk"

    def body(self, payload: dict[str, Any]) -> dict[str, Any]:
        """DingTalk markdown message."""
        title, text = markdown(payload)
        return {"msgtype": "markdown", "markdown": {"title": title, "text": text}}

    def target(self) -> str:
        """The URL, signed when a secret is configured."""
        return dingtalk_signed_url(self.url, self.secret) if self.secret else self.url


class WeComChannel(_RobotChannel):
    """WeCom (企业微信) group robot, markdown msgtype."""

    name = "wecom"

    def body(self, payload: dict[str, Any]) -> dict[str, Any]:
        """WeCom markdown message (content limited to 4096 bytes)."""
        _, text = markdown(payload)
        return {"msgtype": "markdown", "markdown": {"content": text.encode()[:4000].decode(errors="ignore")}}


def alert_line(payload: dict[str, Any]) -> str:
    """The ``alerts`` measurement line for one notification."""
    from datetime import datetime

    from gulou.tsdb.line_protocol import encode_line

    when = payload.get("resolved_at") if payload["event"] == "resolved" else (
        payload["first_seen"] if payload["event"] == "firing" else payload["last_seen"])
    ts_ms = int(datetime.fromisoformat(str(when or payload["last_seen"])).timestamp() * 1000)
    tags = {"rule_id": payload["rule_id"], "domain": payload["domain"], "severity": payload["severity"],
            "state": payload["state"], "street": payload["street"], "site": payload["site"],
            "device": payload["device_id"]}
    fields: dict[str, Any] = {
        "value": None if payload.get("value") is None else float(payload["value"]),
        "limit": None if payload.get("limit") is None else float(payload["limit"]),
        "exceedance": None if payload.get("exceedance") is None else float(payload["exceedance"]),
        "standard": payload["standard"], "message": payload["message"], "message_en": payload["message_en"],
    }
    return encode_line("alerts", tags, fields, ts_ms)


class StoreChannel(Channel):
    """Records alerts and history in SQLite, and ``alerts`` lines in InfluxDB when one is configured."""

    name = "store"

    def __init__(self, store: AlertStore | None, influx: Any | None = None) -> None:
        self.store, self.influx = store, influx

    async def send(self, payload: dict[str, Any]) -> None:
        """Write to SQLite, then InfluxDB."""
        try:
            if self.store is not None:
                await asyncio.to_thread(self.store.record, transition_from_json(payload))
            if self.influx is not None:
                await asyncio.to_thread(self.influx.write_lines, [alert_line(payload)])
        except Exception as exc:
            raise DeliveryError(f"store write failed: {exc}") from exc


class Outbox(Protocol):
    """Where undeliverable notifications wait."""

    def keep(self, channel: str, payload: dict[str, Any], attempts: int, error: str) -> None:
        """Keep one."""

    def pending(self, channel: str, limit: int = 100) -> list[tuple[int, dict[str, Any]]]:
        """Oldest waiting ones."""

    def delivered(self, outbox_id: int) -> None:
        """Forget one."""


class MemoryOutbox:
    """An in-process outbox for runs without a store file."""

    def __init__(self) -> None:
        self._items: dict[int, tuple[str, dict[str, Any]]] = {}
        self._next = 0

    def keep(self, channel: str, payload: dict[str, Any], attempts: int, error: str) -> None:
        """Keep one."""
        self._next += 1
        self._items[self._next] = (channel, payload)

    def pending(self, channel: str, limit: int = 100) -> list[tuple[int, dict[str, Any]]]:
        """Oldest waiting ones."""
        return [(i, p) for i, (c, p) in sorted(self._items.items()) if c == channel][:limit]

    def delivered(self, outbox_id: int) -> None:
        """Forget one."""
        self._items.pop(outbox_id, None)


class ChannelWorker:
    """One channel's bounded queue, retries with jittered backoff, and redelivery from the outbox."""

    def __init__(self, channel: Channel, outbox: Outbox, *, queue_size: int = 1000, attempts: int = 4,
                 backoff_s: float = 0.5, backoff_cap_s: float = 30.0, redeliver_s: float = 30.0) -> None:
        self.channel = channel
        self.outbox = outbox
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=queue_size)
        self.attempts, self.backoff_s, self.backoff_cap_s = attempts, backoff_s, backoff_cap_s
        self.redeliver_s = redeliver_s
        self.stats = {"delivered": 0, "retries": 0, "kept": 0, "overflow": 0, "redelivered": 0}

    def backoff(self, attempt: int) -> float:
        """Exponential delay with jitter (half fixed, half random) so retries of many alerts spread out."""
        delay = min(self.backoff_cap_s, self.backoff_s * 2 ** attempt)
        return float(delay / 2 + random.uniform(0, delay / 2))

    def offer(self, payload: dict[str, Any]) -> None:
        """Queue without waiting; when the queue is full the notification goes to the outbox instead."""
        try:
            self.queue.put_nowait(payload)
        except asyncio.QueueFull:
            self.stats["overflow"] += 1
            self.outbox.keep(self.channel.name, payload, 0, "queue full")

    async def run(self) -> None:
        """Deliver queued notifications forever."""
        while True:
            payload = await self.queue.get()
            await self._deliver(payload)
            self.queue.task_done()

    async def _deliver(self, payload: dict[str, Any]) -> None:
        error = ""
        for attempt in range(self.attempts):
            try:
                await self.channel.send(payload)
                self.stats["delivered"] += 1
                return
            except Exception as exc:  # a channel failure must never reach the engine
                error = str(exc)
                if attempt + 1 < self.attempts:
                    self.stats["retries"] += 1
                    await asyncio.sleep(self.backoff(attempt))
        self.stats["kept"] += 1
        log.warning("%s: could not deliver alert %s after %d attempts (%s); kept for redelivery",
                    self.channel.name, payload.get("alert_id"), self.attempts, error)
        self.outbox.keep(self.channel.name, payload, self.attempts, error)

    async def redeliver(self) -> None:
        """Periodically retry what was kept, oldest first, stopping at the first failure."""
        while True:
            await asyncio.sleep(self.redeliver_s)
            await self.redeliver_once()

    async def redeliver_once(self) -> int:
        """One redelivery pass; returns how many went out."""
        sent = 0
        for outbox_id, payload in self.outbox.pending(self.channel.name):
            try:
                await self.channel.send(payload)
            except Exception as exc:
                log.info("%s: redelivery still failing: %s", self.channel.name, exc)
                break
            self.outbox.delivered(outbox_id)
            self.stats["redelivered"] += 1
            sent += 1
        return sent
