"""The bus boundary: publish with stream acknowledgement, consumer groups, partition readers, leases, snapshots.

Kept narrow on purpose: everything here maps onto NATS JetStream (streams, durable pull consumers, key-value
buckets) and equally onto Kafka (topic partitions, consumer groups with committed offsets, a compacted topic
or a small database for leases and snapshots).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from gulou.settings import Settings

Kind = Literal["reading", "status", "dead"]
KINDS: tuple[Kind, ...] = ("reading", "status", "dead")


class BusError(RuntimeError):
    """The bus could not do what was asked; nothing was acknowledged upstream because of it."""


class BusUnavailable(BusError):
    """No stream acknowledgement within the deadline (no quorum, leader election, connection lost)."""


class BusFull(BusError):
    """The stream refuses new messages: its byte or message limit is reached (consumers are behind)."""


class ReaderClosed(BusError):
    """A partition reader was replaced by a newer owner or deleted: stop working on that partition."""


class SnapshotConflict(BusError):
    """A snapshot was written by someone else since it was loaded: this worker is no longer the owner."""


@dataclass(frozen=True)
class Topology:
    """What the bus carries and who reads it; fixed when the stream is made (partitions) or provisioned."""

    partitions: int = 16
    # Shared groups: each message goes to one member of each group (storage writers).
    groups: tuple[str, ...] = ("sink",)
    # Partitioned groups: per partition one ordered reader at a time, resumable from a snapshot (rules).
    partitioned: tuple[str, ...] = ("rules",)

    def __post_init__(self) -> None:
        if not 1 <= self.partitions <= 4096:
            raise ValueError(f"partitions must be within 1..4096, not {self.partitions}")
        for name in (*self.groups, *self.partitioned):
            if not name or not name.replace("_", "").replace("-", "").isalnum():
                raise ValueError(f"group name {name!r}: letters, digits, '-' and '_' only")


@dataclass(frozen=True)
class Envelope:
    """One message to publish: its kind, partition (None for dead letters), deterministic id and body."""

    kind: Kind
    partition: int | None
    msg_id: str
    body: bytes


@dataclass(frozen=True)
class Delivery:
    """One message handed to a consumer; ``seq`` is its position in the stream (increasing)."""

    kind: Kind
    partition: int | None
    msg_id: str
    body: bytes
    seq: int
    attempt: int = 1
    # The implementation's handle for acknowledging this delivery.
    handle: object = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class PublishResult:
    """How a publish ended: newly stored messages and duplicates the stream had already."""

    stored: int
    duplicates: int


@dataclass(frozen=True)
class GroupStats:
    """A consumer group's backlog: not yet delivered, and delivered but not acknowledged."""

    pending: int
    unacked: int


@dataclass(frozen=True)
class BusStats:
    """The stream's fill against its limits and each group's backlog, for ``gulou stats``."""

    kind: str
    messages: int
    bytes: int
    max_bytes: int | None
    max_age_s: float | None
    partitions: int
    replicas: int
    groups: dict[str, GroupStats]


@dataclass(frozen=True)
class Lease:
    """An exclusive claim on a name held by ``owner`` until renewed or ``expires_at`` (local monotonic)."""

    name: str
    owner: str
    revision: int
    expires_at: float

    def valid(self, now: float) -> bool:
        """Whether the holder may still act on it at monotonic time ``now``."""
        return now < self.expires_at


@dataclass(frozen=True)
class Snapshot:
    """State saved by a partition owner, covering the stream up to and including ``seq``."""

    seq: int
    data: bytes
    revision: int


class Consumer(ABC):
    """A member of a shared group, or the reader of one partition; fetch, process, commit, then ``ack``."""

    @abstractmethod
    async def fetch(self, max_messages: int = 500, timeout_s: float = 1.0) -> list[Delivery]:
        """Up to ``max_messages`` deliveries, waiting at most ``timeout_s`` for the first; [] when idle."""

    @abstractmethod
    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Done with these (after the caller's commit); a partition reader acks everything up to the last."""

    @abstractmethod
    async def progress(self, deliveries: Sequence[Delivery]) -> None:
        """Still working on these: do not hand them to another member yet."""

    @abstractmethod
    async def close(self) -> None:
        """Leave; unacknowledged deliveries go to another member after the ack wait."""


class Leases(ABC):
    """Exclusive, expiring claims (partition ownership, worker membership)."""

    ttl_s: float

    @abstractmethod
    async def acquire(self, name: str, owner: str) -> Lease | None:
        """Take the lease if nobody holds it; None when someone does."""

    @abstractmethod
    async def renew(self, lease: Lease) -> Lease | None:
        """Extend a held lease; None when it was lost (expired and taken, or released)."""

    @abstractmethod
    async def release(self, lease: Lease) -> None:
        """Give the lease up now so another worker can take it without waiting for the TTL."""

    @abstractmethod
    async def holders(self, prefix: str) -> dict[str, str]:
        """Current holders of the leases whose names start with ``prefix``: name -> owner."""


class Snapshots(ABC):
    """Partition state with the stream sequence it covers; writes are compare-and-set on the revision."""

    @abstractmethod
    async def load(self, key: str) -> Snapshot | None:
        """The latest snapshot under ``key``, or None."""

    @abstractmethod
    async def save(self, key: str, seq: int, data: bytes, expected_revision: int) -> Snapshot:
        """Replace the snapshot whose revision is ``expected_revision`` (0: none yet); SnapshotConflict if not."""


@dataclass(frozen=True)
class Claim:
    """One notification's claim: the worker sending it, the channels that delivered it, whether it is done.

    ``revision`` is the store's version of the claim (0: not stored); writes are compare-and-set on it.
    """

    owner: str
    done: frozenset[str] = frozenset()
    sent: bool = False
    revision: int = 0


class Claims(ABC):
    """Compare-and-set records keyed by a notification's deterministic id, kept within the dedupe horizon (days).

    Alert transitions carry deterministic ids: the worker that claims one sends it and marks it sent once every
    channel delivered it; a claim left unsent by a worker that is gone is taken over (a CAS on its revision),
    so a replay after a takeover or restart neither loses a notification nor sends it twice.
    """

    @abstractmethod
    async def get(self, key: str) -> Claim | None:
        """The claim on ``key``, or None when there is none."""

    @abstractmethod
    async def put(self, key: str, claim: Claim) -> Claim | None:
        """Store ``claim`` if ``key`` is still at ``claim.revision`` (0: absent); the stored claim, else None."""


class Bus(ABC):
    """A replicated log partitioned by site, with consumer groups, partition readers, leases and snapshots."""

    topology: Topology
    #: How long the stream remembers a message id to drop a republished copy.
    dedupe_window_s: float

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: Settings, topology: Topology) -> Bus | None:
        """The bus the ``bus`` settings section describes, or None when it describes another kind."""

    @property
    def partitions(self) -> int:
        """The partition count in force (the stream's, once started)."""
        return self.topology.partitions

    @abstractmethod
    async def start(self) -> None:
        """Connect and create the stream, consumers and buckets if missing (idempotent, safe to race)."""

    @abstractmethod
    async def close(self) -> None:
        """Disconnect; nothing unacknowledged is lost."""

    @abstractmethod
    async def publish(self, batch: Sequence[Envelope], timeout_s: float = 30.0) -> PublishResult:
        """Store every message (duplicates by id are dropped); returns once the stream acknowledged all.

        Raises BusUnavailable or BusFull when that did not happen within ``timeout_s``: the caller must not
        acknowledge the messages upstream then.
        """

    @abstractmethod
    async def consumer(self, group: str) -> Consumer:
        """Join the shared group ``group`` (one of ``topology.groups``)."""

    @abstractmethod
    async def reader(self, group: str, partition: int, after_seq: int, token: str) -> Consumer:
        """Read ``partition`` in order for ``group`` from after ``after_seq`` (or where it was last acked).

        ``token`` identifies this ownership (the lease revision): a reader made with a newer token replaces
        every older reader of the partition, whose next fetch raises ReaderClosed.
        """

    @property
    @abstractmethod
    def leases(self) -> Leases:
        """Exclusive expiring claims."""

    @property
    @abstractmethod
    def snapshots(self) -> Snapshots:
        """Partition snapshots."""

    @property
    @abstractmethod
    def claims(self) -> Claims:
        """Who sends each alert transition, and which channels have delivered it (kept for days)."""

    @abstractmethod
    async def stats(self) -> BusStats:
        """Fill and backlog figures."""
