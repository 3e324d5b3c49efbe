"""Leases and snapshots in JetStream key-value buckets (compare-and-set on the key's revision)."""

from __future__ import annotations

import hashlib
import json
import struct
import time
import zlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js import api as js_api
from nats.js.kv import KeyValue

from gulou.backoff import Backoff
from gulou.bus.base import (
    BusError,
    BusUnavailable,
    Claim,
    Claims,
    Lease,
    Leases,
    Snapshot,
    SnapshotConflict,
    Snapshots,
)

_TRANSIENT = (nats.errors.TimeoutError, nats.errors.NoRespondersError, nats.errors.ConnectionClosedError,
              nats.js.errors.NoStreamResponseError, nats.js.errors.ServiceUnavailableError, TimeoutError)
WRONG_LAST_SEQUENCE = 10071  # JetStream's error code for a write on a revision that is not the key's last
# Snapshot value: magic, covered stream sequence, then the zlib-compressed state.
_HEADER = struct.Struct(">4sQ")
_MAGIC = b"GLS1"
T = TypeVar("T")


async def ensure_bucket(js: JetStreamContext, bucket: str, replicas: int, ttl_s: float | None) -> KeyValue:
    """The bucket, created if missing (an existing one is used as it is)."""
    try:
        return await js.key_value(bucket)
    except nats.js.errors.BucketNotFoundError:
        pass
    try:
        return await js.create_key_value(js_api.KeyValueConfig(bucket=bucket, history=1, ttl=ttl_s,
                                                               replicas=replicas,
                                                               storage=js_api.StorageType.FILE))
    except nats.js.errors.BadRequestError:
        return await js.key_value(bucket)  # another process made it first


class KvLeases(Leases):
    """A lease is a key created only if absent; renewals are updates on the last revision; the bucket TTL expires it.

    The holder stops acting at its local expiry, measured from before its last successful write, which comes
    no later than the server's: a lease is never held by two workers that both believe in it.
    """

    def __init__(self, kv: KeyValue, ttl_s: float) -> None:
        self.kv, self.ttl_s = kv, ttl_s

    @staticmethod
    def _value(owner: str) -> bytes:
        return json.dumps({"owner": owner, "at_ms": int(time.time() * 1000)}).encode()

    async def acquire(self, name: str, owner: str) -> Lease | None:
        """Create the key; None when it exists."""
        sent = time.monotonic()
        try:
            revision = await self.kv.create(name, self._value(owner))
        except nats.js.errors.KeyWrongLastSequenceError:
            return None
        except _TRANSIENT as exc:
            raise BusUnavailable(f"lease {name}: {exc!r}") from exc
        return Lease(name, owner, revision, sent + self.ttl_s)

    async def renew(self, lease: Lease) -> Lease | None:
        """Update on the held revision; None when someone else wrote or it expired."""
        sent = time.monotonic()
        try:
            revision = await self.kv.update(lease.name, self._value(lease.owner), last=lease.revision)
        except nats.js.errors.KeyWrongLastSequenceError:
            return None
        except _TRANSIENT as exc:
            raise BusUnavailable(f"lease {lease.name}: {exc!r}") from exc
        return Lease(lease.name, lease.owner, revision, sent + self.ttl_s)

    async def release(self, lease: Lease) -> None:
        """Delete on the held revision (a stale release changes nothing)."""
        try:
            await self.kv.delete(lease.name, last=lease.revision)
        except (nats.js.errors.KeyWrongLastSequenceError, nats.js.errors.KeyNotFoundError):
            pass
        except nats.js.errors.BadRequestError as exc:
            # A delete on a revision that is gone (expired, or taken by another worker) comes back as a plain
            # "wrong last sequence" API error, not as KeyWrongLastSequenceError as an update's does.
            if exc.err_code != WRONG_LAST_SEQUENCE:
                raise BusUnavailable(f"lease {lease.name}: {exc!r}") from exc
        except _TRANSIENT as exc:
            raise BusUnavailable(f"lease {lease.name}: {exc!r}") from exc

    async def holders(self, prefix: str) -> dict[str, str]:
        """Owners of the leases present under ``prefix``."""
        try:
            keys = await self.kv.keys()
        except nats.js.errors.NoKeysError:
            return {}
        except _TRANSIENT as exc:
            raise BusUnavailable(f"listing leases: {exc!r}") from exc
        out: dict[str, str] = {}
        for key in keys:
            if not key.startswith(prefix):
                continue
            try:
                entry = await self.kv.get(key)
            except nats.js.errors.KeyNotFoundError:
                continue  # expired or released since the listing
            except _TRANSIENT as exc:
                raise BusUnavailable(f"reading lease {key}: {exc!r}") from exc
            if entry.value:
                out[key] = str(json.loads(entry.value).get("owner", ""))
        return out


class KvSnapshots(Snapshots):
    """Snapshots as compressed values in a bucket; ``max_bytes`` is the server's largest message."""

    def __init__(self, kv: KeyValue, max_bytes: int) -> None:
        self.kv, self.max_bytes = kv, max_bytes

    async def load(self, key: str) -> Snapshot | None:
        """The saved snapshot, or None."""
        try:
            entry = await self.kv.get(key)
        except nats.js.errors.KeyNotFoundError:
            return None
        except _TRANSIENT as exc:
            raise BusUnavailable(f"snapshot {key}: {exc!r}") from exc
        raw = entry.value or b""
        if len(raw) < _HEADER.size or raw[:4] != _MAGIC:
            raise BusError(f"snapshot {key}: not a gulou snapshot")
        _magic, seq = _HEADER.unpack_from(raw)
        return Snapshot(seq, zlib.decompress(raw[_HEADER.size:]), entry.revision or 0)

    async def save(self, key: str, seq: int, data: bytes, expected_revision: int) -> Snapshot:
        """Write on ``expected_revision`` (create when 0); SnapshotConflict when someone else wrote."""
        value = _HEADER.pack(_MAGIC, seq) + zlib.compress(data, 6)
        if len(value) > self.max_bytes - 512:
            raise BusError(f"snapshot {key} is {len(value)} bytes compressed, over the server's max_payload "
                           f"({self.max_bytes}): use more partitions or raise max_payload")
        try:
            if expected_revision == 0:
                revision = await self.kv.create(key, value)
            else:
                revision = await self.kv.update(key, value, last=expected_revision)
        except nats.js.errors.KeyWrongLastSequenceError as exc:
            raise SnapshotConflict(f"snapshot {key} changed since revision {expected_revision}") from exc
        except _TRANSIENT as exc:
            raise BusUnavailable(f"snapshot {key}: {exc!r}") from exc
        return Snapshot(seq, data, revision)


class KvClaims(Claims):
    """Claims as small JSON values under hashed keys (valid KV keys); they expire with the bucket's TTL.

    A create is an update expecting no previous revision (one round trip, not the client's create-then-get),
    and brief outages are retried for up to ``retry_s`` so a leader election does not stop a partition.
    """

    def __init__(self, kv: KeyValue, retry_s: float = 20.0) -> None:
        self.kv, self.retry_s = kv, retry_s

    @staticmethod
    def _name(key: str) -> str:
        return hashlib.blake2b(key.encode("utf-8"), digest_size=16).hexdigest()

    async def get(self, key: str) -> Claim | None:
        """The stored claim, or None."""
        try:
            entry = await self._retry(key, lambda: self.kv.get(self._name(key)))
        except nats.js.errors.KeyNotFoundError:
            return None
        try:
            data = json.loads(entry.value or b"{}")
            return Claim(str(data["o"]), frozenset(data.get("d", ())), bool(data.get("s")), entry.revision or 0)
        except (ValueError, KeyError, TypeError):
            # A claim written before claims named their owner: treat it as sent, as it was then.
            return Claim("", frozenset(), True, entry.revision or 0)

    async def put(self, key: str, claim: Claim) -> Claim | None:
        """Write on ``claim.revision`` (0: create); None when the key is at another revision."""
        value = json.dumps({"k": key[:200], "o": claim.owner, "d": sorted(claim.done), "s": int(claim.sent)},
                           separators=(",", ":")).encode()
        try:
            revision = await self._retry(key, lambda: self.kv.update(self._name(key), value, last=claim.revision))
        except nats.js.errors.KeyWrongLastSequenceError:
            return None
        return Claim(claim.owner, frozenset(claim.done), claim.sent, int(revision))

    async def _retry(self, key: str, step: Callable[[], Awaitable[T]]) -> T:
        deadline = time.monotonic() + self.retry_s
        backoff = Backoff(0.1, 2.0)
        while True:
            try:
                return await step()
            except _TRANSIENT as exc:
                if time.monotonic() >= deadline:
                    raise BusUnavailable(f"claim {key}: {exc!r}") from exc
            await backoff.sleep()
