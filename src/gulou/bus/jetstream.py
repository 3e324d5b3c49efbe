"""The bus on NATS JetStream: one interest-retention stream, durable pull consumers, KV leases and snapshots.

Subjects are ``<prefix>.<partition>.reading``, ``<prefix>.<partition>.status`` and ``<prefix>.dead``. The
stream keeps a message until every consumer group is done with it (interest retention), so it stands in for
the disk spool: when it reaches its byte limit it refuses new messages and the collectors stop acknowledging
MQTT. Shared groups are one durable consumer each. A partitioned group has one durable consumer per
partition and ownership generation (``rules-p3-<lease revision>``): a new owner creates its generation at
the snapshot's sequence before deleting the older ones, so no message it still needs loses its interest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js import api as js_api

from gulou.backoff import Backoff
from gulou.bus.base import (
    KINDS,
    Bus,
    BusError,
    BusFull,
    BusStats,
    BusUnavailable,
    Claims,
    Consumer,
    Delivery,
    Envelope,
    GroupStats,
    Kind,
    Leases,
    PublishResult,
    ReaderClosed,
    Snapshots,
    Topology,
)
from gulou.bus.jetstream_kv import KvClaims, KvLeases, KvSnapshots, ensure_bucket
from gulou.bus.jetstream_pub import NoStream, Publisher, StreamRefused

if TYPE_CHECKING:
    from gulou.settings import Settings

log = logging.getLogger(__name__)
_DESCRIPTION = re.compile(r"partitions=(\d+)")
READER_CHECK_S = 5.0
# Errors that mean "not now" (no quorum, leader election, reconnecting): retried until the deadline.
TRANSIENT = (nats.errors.TimeoutError, nats.errors.NoRespondersError, nats.errors.ConnectionClosedError,
             nats.errors.OutboundBufferLimitError, nats.errors.ConnectionReconnectingError,
             nats.js.errors.NoStreamResponseError, nats.js.errors.ServiceUnavailableError, NoStream, TimeoutError)


class JetStreamBus(Bus):
    """The bus on a NATS JetStream cluster (or a single server)."""

    def __init__(self, urls: Sequence[str], topology: Topology | None = None, *, stream: str = "GULOU",
                 prefix: str = "gulou", replicas: int | None = None, max_bytes: int = 10 * 1024**3,
                 max_age_s: float = 7 * 86400.0, dedupe_window_s: float = 120.0, ack_wait_s: float = 30.0,
                 reader_ack_wait_s: float = 300.0, max_ack_pending: int = 20_000,
                 reader_max_ack_pending: int = 200_000, lease_ttl_s: float = 10.0, attempt_timeout_s: float = 5.0,
                 connect_timeout_s: float = 20.0, name: str = "gulou") -> None:
        if not urls:
            raise ValueError("no NATS server URL given")
        self.urls = list(urls)
        self.topology = topology or Topology()
        self.stream, self.prefix = stream, prefix
        self.wanted_replicas, self.replicas = replicas, replicas or 1
        self.max_bytes, self.max_age_s, self.dedupe_window_s = max_bytes, max_age_s, dedupe_window_s
        self.ack_wait_s, self.reader_ack_wait_s = ack_wait_s, reader_ack_wait_s
        self.max_ack_pending, self.reader_max_ack_pending = max_ack_pending, reader_max_ack_pending
        self.lease_ttl_s, self.attempt_timeout_s, self.connect_timeout_s = lease_ttl_s, attempt_timeout_s, \
            connect_timeout_s
        self.name = name
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._leases: KvLeases | None = None
        self._snapshots: KvSnapshots | None = None
        self._claims: KvClaims | None = None
        self._publisher: Publisher | None = None
        self._closing = False

    @classmethod
    def from_settings(cls, settings: Settings, topology: Topology) -> JetStreamBus | None:
        """The JetStream bus when ``GULOU_BUS`` lists ``nats://`` servers."""
        b = settings.bus
        urls = b.urls()
        if not urls:
            return None
        bad = [u for u in urls if not u.startswith(("nats://", "tls://"))]
        if bad:
            raise ValueError(f"bus URL(s) {', '.join(bad)}: use nats://HOST:PORT")
        return cls(urls, Topology(b.partitions, topology.groups, topology.partitioned), replicas=b.replicas,
                   max_bytes=b.max_bytes, max_age_s=b.max_age_s, lease_ttl_s=b.lease_ttl_s)

    # -- connection and provisioning ----------------------------------------------------------------------
    @property
    def js(self) -> JetStreamContext:
        """The JetStream context (after ``start``)."""
        if self._js is None:
            raise BusError("the bus is not started")
        return self._js

    async def start(self) -> None:
        """Connect, then create the stream, the consumers and the buckets if they are missing."""
        try:
            self._nc = await asyncio.wait_for(nats.connect(
                servers=self.urls, name=self.name, max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                connect_timeout=2, pending_size=64 * 1024 * 1024, error_cb=self._on_error,
                disconnected_cb=self._on_disconnect, reconnected_cb=self._on_reconnect), self.connect_timeout_s)
        except TimeoutError as exc:
            raise BusUnavailable(f"no NATS server answered at {', '.join(self.urls)}") from exc
        self._js = self._nc.jetstream(timeout=self.attempt_timeout_s)
        self._publisher = Publisher(self._nc)
        await self._publisher.start()
        if self.wanted_replicas is None:
            # Every server in the cluster advertises its client URL; a lone server has none to give.
            self.replicas = max(1, min(3, len(self._nc._server_info.get("connect_urls") or [])))
        await self._retry("provisioning the stream", self._ensure_stream)
        await self._retry("provisioning the consumers", self._ensure_consumers)
        leases_kv = await self._retry("provisioning the lease bucket", lambda: ensure_bucket(
            self.js, f"{self.stream.lower()}_leases", self.replicas, ttl_s=self.lease_ttl_s))
        snaps_kv = await self._retry("provisioning the snapshot bucket", lambda: ensure_bucket(
            self.js, f"{self.stream.lower()}_snapshots", self.replicas, ttl_s=None))
        claims_kv = await self._retry("provisioning the claims bucket", lambda: ensure_bucket(
            self.js, f"{self.stream.lower()}_claims", self.replicas, ttl_s=self.max_age_s))
        self._claims = KvClaims(claims_kv, retry_s=self.connect_timeout_s)
        self._leases = KvLeases(leases_kv, self.lease_ttl_s)
        self._snapshots = KvSnapshots(snaps_kv, max_bytes=self._nc.max_payload)
        log.info("bus: stream %s, %d partition(s), %d replica(s), groups %s, partitioned %s", self.stream,
                 self.topology.partitions, self.replicas, self.topology.groups, self.topology.partitioned)

    async def _retry(self, what: str, step: Any) -> Any:
        deadline = time.monotonic() + self.connect_timeout_s
        backoff = Backoff(0.2, 2.0)
        while True:
            try:
                return await step()
            except TRANSIENT as exc:
                if time.monotonic() >= deadline:
                    raise BusUnavailable(f"{what}: {exc!r}") from exc
                log.warning("bus: %s: %r; retrying", what, exc)
                await backoff.sleep()

    async def _ensure_stream(self) -> None:
        config = js_api.StreamConfig(
            name=self.stream, description=f"gulou bus; partitions={self.topology.partitions}",
            subjects=[f"{self.prefix}.>"], retention=js_api.RetentionPolicy.INTEREST,
            storage=js_api.StorageType.FILE, num_replicas=self.replicas, discard=js_api.DiscardPolicy.NEW,
            max_bytes=self.max_bytes, max_age=self.max_age_s, duplicate_window=self.dedupe_window_s)
        try:
            info = await self.js.stream_info(self.stream)
        except nats.js.errors.NotFoundError:
            try:
                info = await self.js.add_stream(config)
            except nats.js.errors.BadRequestError:
                info = await self.js.stream_info(self.stream)  # another process made it first
        found = _DESCRIPTION.search(info.config.description or "")
        partitions = int(found.group(1)) if found else self.topology.partitions
        if partitions != self.topology.partitions:
            log.warning("bus: stream %s was made with %d partitions; using them, not the %d configured",
                        self.stream, partitions, self.topology.partitions)
            self.topology = Topology(partitions, self.topology.groups, self.topology.partitioned)
        self.replicas = info.config.num_replicas or self.replicas
        current = (info.config.max_bytes, info.config.max_age, info.config.duplicate_window)
        if current != (self.max_bytes, self.max_age_s, self.dedupe_window_s):
            # Limits may change; the partition count and the replicas stay as made.
            await self.js.update_stream(config.evolve(description=info.config.description, num_replicas=self.replicas))

    async def _consumer_names(self) -> list[str]:
        names: list[str] = []
        while True:
            page = await self.js.consumers_info(self.stream, offset=len(names))
            names.extend(c.name for c in page)
            if len(page) < 256:
                return names

    async def _ensure_consumers(self) -> None:
        existing = set(await self._consumer_names())
        for group in self.topology.groups:
            if group not in existing:
                await self.js.add_consumer(self.stream, js_api.ConsumerConfig(
                    durable_name=group, ack_policy=js_api.AckPolicy.EXPLICIT, ack_wait=self.ack_wait_s,
                    max_deliver=-1, max_ack_pending=self.max_ack_pending,
                    deliver_policy=js_api.DeliverPolicy.ALL))
        for group in self.topology.partitioned:
            for p in range(self.topology.partitions):
                if not any(n.startswith(f"{group}-p{p}-") for n in existing):
                    # Generation g0: interest in the partition from the start, before any owner exists.
                    await self.js.add_consumer(self.stream, self._reader_config(group, p, f"{group}-p{p}-g0", None))

    def _reader_config(self, group: str, partition: int, name: str, start: int | None) -> js_api.ConsumerConfig:
        # Explicit acks, sent for every message at commit: on an interest stream nats-server 2.9 removes only
        # the acknowledged message itself on an AckAll, so the ones before it would stay forever.
        by_seq = start is not None
        return js_api.ConsumerConfig(
            durable_name=name, ack_policy=js_api.AckPolicy.EXPLICIT, ack_wait=self.reader_ack_wait_s, max_deliver=-1,
            max_ack_pending=self.reader_max_ack_pending, filter_subject=f"{self.prefix}.{partition}.*",
            deliver_policy=js_api.DeliverPolicy.BY_START_SEQUENCE if by_seq else js_api.DeliverPolicy.ALL,
            opt_start_seq=start if by_seq else None)

    async def close(self) -> None:
        """Flush and disconnect."""
        self._closing = True
        if self._nc is not None and not self._nc.is_closed:
            try:
                await self._nc.drain()
            except (TimeoutError, nats.errors.Error) as exc:
                log.warning("bus: drain failed: %r", exc)
                await self._nc.close()
        self._nc = self._js = None
        self._publisher = None

    async def _on_error(self, exc: Exception) -> None:
        log.warning("bus: NATS connection error: %r", exc)

    async def _on_disconnect(self) -> None:
        if not self._closing:
            log.warning("bus: disconnected from NATS; reconnecting")

    async def _on_reconnect(self) -> None:
        url = self._nc.connected_url.netloc if self._nc and self._nc.connected_url else "?"
        log.info("bus: reconnected to NATS at %s", url)

    # -- publish ---------------------------------------------------------------------------------------------
    def subject(self, env: Envelope) -> str:
        """The subject a message is published on."""
        if env.kind == "dead" or env.partition is None:
            return f"{self.prefix}.dead"
        return f"{self.prefix}.{env.partition}.{env.kind}"

    async def publish(self, batch: Sequence[Envelope], timeout_s: float = 30.0) -> PublishResult:
        """Publish asynchronously, await every PubAck, retry what failed with the same ids until the deadline."""
        if self._publisher is None:
            raise BusError("the bus is not started")
        deadline = time.monotonic() + timeout_s
        backoff = Backoff(0.1, 2.0)
        todo = list(batch)
        stored = duplicates = 0
        while todo:
            name, flight = await self._publisher.send([(self.subject(e), e.body, e.msg_id) for e in todo])
            wait = max(0.05, min(self.attempt_timeout_s, deadline - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(flight.done.wait(), wait)
            self._publisher.forget(name)  # a late ack is ignored: the retry carries the same id
            again: list[Envelope] = []
            errors: list[Exception] = []
            for env, outcome in zip(todo, flight.outcomes, strict=True):
                if outcome is None or isinstance(outcome, Exception):
                    again.append(env)
                    if outcome is not None:
                        errors.append(outcome)
                elif outcome:
                    stored += 1
                else:
                    duplicates += 1
            todo = again
            if todo:
                full = any(isinstance(e, StreamRefused) and e.full for e in errors)
                if time.monotonic() + backoff.delay / 2 >= deadline:
                    cause = errors[0] if errors else "no acknowledgement"
                    error = BusFull if full else BusUnavailable
                    raise error(f"{len(todo)} of {len(batch)} message(s) not stored by {self.stream} within "
                                f"{timeout_s:g} s: {cause!r}")
                log.warning("bus: %d message(s) not acknowledged yet (%s); retrying", len(todo),
                            "stream full" if full else (repr(errors[0]) if errors else "timeout"))
                await backoff.sleep()
        return PublishResult(stored, duplicates)

    # -- consumers ---------------------------------------------------------------------------------------------
    async def consumer(self, group: str) -> Consumer:
        """A member of the shared group's durable consumer."""
        if group not in self.topology.groups:
            raise ValueError(f"unknown group {group!r}; the topology has {self.topology.groups}")
        sub = await self.js.pull_subscribe_bind(durable=group, stream=self.stream)
        return _JsConsumer(self, sub, group, ordered=False)

    async def reader(self, group: str, partition: int, after_seq: int, token: str) -> Consumer:
        """Make this ownership's generation of the partition's consumer, then delete the older generations."""
        if group not in self.topology.partitioned or not 0 <= partition < self.topology.partitions:
            raise ValueError(f"no partition {partition} of group {group!r}")
        reader: Consumer = await self._retry(f"opening partition {partition} of {group}",
                                             lambda: self._open_reader(group, partition, after_seq, token))
        return reader

    async def _open_reader(self, group: str, partition: int, after_seq: int, token: str) -> Consumer:
        base = f"{group}-p{partition}-"
        name = f"{base}{token}"
        floor = 0
        older = [n for n in await self._consumer_names() if n.startswith(base) and n != name]
        for old in older:
            try:
                info = await self.js.consumer_info(self.stream, old)
            except nats.js.errors.NotFoundError:
                continue
            floor = max(floor, info.ack_floor.stream_seq if info.ack_floor else 0)
        start = max(after_seq, floor) + 1
        try:
            await self.js.add_consumer(self.stream, self._reader_config(group, partition, name, start))
        except nats.js.errors.BadRequestError as exc:
            raise ReaderClosed(f"cannot open {name}: {exc}") from exc
        for old in older:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await self.js.delete_consumer(self.stream, old)
        sub = await self.js.pull_subscribe_bind(durable=name, stream=self.stream)
        log.info("bus: %s reads partition %d from sequence %d", name, partition, start)
        return _JsConsumer(self, sub, name, ordered=True, after=start - 1)

    @property
    def leases(self) -> Leases:
        """Leases in the KV bucket ``<stream>_leases``."""
        if self._leases is None:
            raise BusError("the bus is not started")
        return self._leases

    @property
    def snapshots(self) -> Snapshots:
        """Snapshots in the KV bucket ``<stream>_snapshots``."""
        if self._snapshots is None:
            raise BusError("the bus is not started")
        return self._snapshots

    @property
    def claims(self) -> Claims:
        """Claims in the KV bucket ``<stream>_claims`` (kept as long as the stream keeps messages)."""
        if self._claims is None:
            raise BusError("the bus is not started")
        return self._claims

    async def stats(self) -> BusStats:
        """The stream's fill and limits, and each group's backlog."""
        stats: BusStats = await self._retry("reading the stream's figures", self._stats)
        return stats

    async def _stats(self) -> BusStats:
        info = await self.js.stream_info(self.stream)
        groups: dict[str, GroupStats] = {}
        offset = 0
        while True:
            page = await self.js.consumers_info(self.stream, offset=offset)
            for c in page:
                group = c.name.split("-p", 1)[0] if c.name not in self.topology.groups else c.name
                prev = groups.get(group, GroupStats(0, 0))
                groups[group] = GroupStats(prev.pending + (c.num_pending or 0),
                                           prev.unacked + (c.num_ack_pending or 0))
            offset += len(page)
            if len(page) < 256:
                break
        cfg = info.config
        return BusStats("jetstream", info.state.messages, info.state.bytes,
                        cfg.max_bytes if cfg.max_bytes and cfg.max_bytes > 0 else None,
                        cfg.max_age if cfg.max_age else None, self.topology.partitions,
                        cfg.num_replicas or 1, groups)


class _JsConsumer(Consumer):
    """A pull subscription on a durable consumer; ``ordered``: a partition reader (skips redeliveries)."""

    def __init__(self, bus: JetStreamBus, sub: JetStreamContext.PullSubscription, name: str, *, ordered: bool,
                 after: int = 0) -> None:
        self.bus, self.sub, self.name, self.ordered = bus, sub, name, ordered
        self._last = after
        # A reader's deliveries not yet acknowledged, by stream sequence: a commit acks all up to a point.
        self._open: dict[int, Msg] = {}
        # A deleted consumer just stops answering: an idle reader checks now and then that it still exists.
        self._checked = float("-inf")

    async def fetch(self, max_messages: int = 500, timeout_s: float = 1.0) -> list[Delivery]:
        """A batch from the consumer; [] when idle or while the cluster is electing."""
        try:
            msgs = await self.sub.fetch(max_messages, timeout=timeout_s)
        except (*TRANSIENT, nats.js.errors.FetchTimeoutError) as exc:
            if self.ordered and time.monotonic() - self._checked >= READER_CHECK_S:
                await self._check_exists(exc)
            return []
        except nats.js.errors.APIError as exc:
            await self._check_exists(exc)
            return []
        out = []
        for msg in msgs:
            delivery = self._delivery(msg)
            if self.ordered:
                if delivery.seq in self._open:
                    self._open[delivery.seq] = msg  # acknowledge through the newest delivery
                if delivery.seq <= self._last:
                    continue  # a redelivery of something this reader already handed out
                self._open[delivery.seq] = msg
            out.append(delivery)
        if self.ordered and out:
            self._last = out[-1].seq
        return out

    async def _check_exists(self, exc: Exception) -> None:
        self._checked = time.monotonic()
        try:
            await self.bus.js.consumer_info(self.bus.stream, self.name)
        except nats.js.errors.NotFoundError as gone:
            raise ReaderClosed(f"consumer {self.name} was deleted (a newer owner took over)") from gone
        except TRANSIENT:
            return
        if not isinstance(exc, TRANSIENT):
            log.warning("bus: fetch from %s failed: %r", self.name, exc)

    def _delivery(self, msg: Msg) -> Delivery:
        meta = msg.metadata
        kind, partition = _parse_subject(self.bus.prefix, msg.subject)
        msg_id = (msg.headers or {}).get("Nats-Msg-Id", "")
        return Delivery(kind, partition, msg_id, msg.data, meta.sequence.stream, meta.num_delivered, handle=msg)

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Shared group: ack each; partition reader: ack everything handed out up to the last of these."""
        if self.ordered:
            upto = max((d.seq for d in deliveries), default=0)
            msgs = [self._open.pop(seq) for seq in sorted(s for s in self._open if s <= upto)]
        else:
            msgs = [d.handle for d in deliveries if isinstance(d.handle, Msg)]
        for msg in msgs:
            if not msg.is_acked:
                await msg.ack()

    async def progress(self, deliveries: Sequence[Delivery]) -> None:
        """Tell the server these are still being worked on."""
        for d in deliveries:
            if isinstance(d.handle, Msg) and not d.handle.is_acked:
                await d.handle.in_progress()

    async def close(self) -> None:
        """Unsubscribe; unacknowledged messages are redelivered after the ack wait."""
        try:
            await self.sub.unsubscribe()
        except (TimeoutError, nats.errors.Error) as exc:
            log.debug("bus: unsubscribe from %s: %r", self.name, exc)


def _parse_subject(prefix: str, subject: str) -> tuple[Kind, int | None]:
    parts = subject[len(prefix) + 1:].split(".")
    if parts == ["dead"]:
        return "dead", None
    kind = parts[-1]
    if len(parts) != 2 or kind not in KINDS or not parts[0].isdigit():
        raise BusError(f"unexpected subject {subject!r} on the bus")
    return kind, int(parts[0])
