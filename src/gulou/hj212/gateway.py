"""What the gateway does with each frame: check it, hand it on, answer the station, account for it.

Transport-free: ``handle(event, link)`` takes a framed event and a link that can send bytes back, so the
logic is tested without sockets and the TCP server stays small. State is keyed by MN, never by
connection: one logger may carry several MNs, and an MN may come back on a new connection (§5.6).
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from gulou.hj212 import build
from gulou.hj212.accounting import Accounting
from gulou.hj212.convert import DATA_CNS, ConvertError, StationReading, merge, parse_datatime, to_reading
from gulou.hj212.decode import Opened, Refusal, open_frame
from gulou.hj212.downstream import DeadLetter, Downstream, DownstreamError
from gulou.hj212.framing import FrameError, FrameEvent
from gulou.hj212.segment import Packet
from gulou.hj212.stations import StationBook

log = logging.getLogger(__name__)
# Refusals about the content of a trusted packet: the station cannot fix them by sending again, so
# once the dead letter is recorded the packet is answered (a packet never acked repeats forever, §1.3).
ACK_AFTER_DEAD_LETTER = frozenset({"bad_cp", "missing_datatime", "bad_datatime", "future_timestamp", "bad_value",
                                   "out_of_range", "no_metrics"})
_ANSWERS = frozenset({"9011", "9012", "9013", "9014"})
DedupKey = tuple[str, str, datetime, int]
PartKey = tuple[str, str, datetime]


class Link(Protocol):
    """The connection a packet came in on, as far as the gateway needs it."""

    peer: str

    async def send(self, data: bytes) -> None:
        """Write bytes to the station (errors are the link's business)."""


@dataclass(frozen=True)
class GatewayOptions:
    """Behaviour switches; limits on sockets live with the server."""

    ack_rejected: bool = True
    max_future: timedelta = timedelta(minutes=10)
    max_clock_offset: timedelta = timedelta(seconds=60)
    dedup_size: int = 200_000
    max_partial: int = 10_000


@dataclass
class _Partial:
    pnum: int
    parts: dict[int, StationReading]


class Gateway:
    """Checks, converts, delivers and answers packets; accounts for every one."""

    def __init__(
        self,
        book: StationBook,
        downstream: Downstream,
        options: GatewayOptions | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.book = book
        self.downstream = downstream
        self.options = options or GatewayOptions()
        self.now = clock
        self.accounting = Accounting()
        self._seen: OrderedDict[DedupKey, bytes] = OrderedDict()
        self._partial: OrderedDict[PartKey, _Partial] = OrderedDict()
        self.routes: dict[str, Link] = {}  # MN → the link it last spoke on, for host requests
        self._spoke: dict[int, set[str]] = {}  # id(link) → the MNs seen on it
        self._last: dict[str, Packet] = {}

    async def handle(self, event: FrameEvent, link: Link) -> None:
        """Account for one framed event from ``link``; never raises on bad input."""
        acc = self.accounting
        acc.received += 1
        closed = acc.closed
        try:
            await self._handle(event, link)
        except Exception:
            # A bug must cost one packet (unanswered, so the station sends it again), never the link.
            log.exception("hj212 packet from %s could not be handled", link.peer)
            if acc.closed == closed:
                acc.outcome("failed", "internal_error")

    async def _handle(self, event: FrameEvent, link: Link) -> None:
        acc = self.accounting
        if isinstance(event, FrameError):
            await self._refuse(DeadLetter(event.raw, event.reason, event.detail, None, link.peer, self.now()),
                               None, link)
            return
        opened = open_frame(event, self.book)
        if isinstance(opened, Refusal):
            letter = DeadLetter(event.raw, opened.reason, opened.detail, opened.mn, link.peer, self.now())
            await self._refuse(letter, opened.packet, link)
            return
        packet = opened.packet
        acc.by_cn[packet.cn] += 1
        health = acc.station(packet.mn)
        health.packets += 1
        health.version, health.peer, health.last_seen = packet.version, link.peer, self.now()
        health.notes.update(opened.notes)
        if self.routes.get(packet.mn) is not link:
            self.routes[packet.mn] = link
            self._spoke.setdefault(id(link), set()).add(packet.mn)
        self._last[packet.mn] = packet
        if packet.cn in DATA_CNS:
            await self._data(opened, event.raw, link)
        elif packet.cn == "9015":
            health.heartbeats += 1
            await self._answer(packet, link, build.notify_response)
            acc.outcome("control")
        elif packet.cn == "1013":
            await self._answer(packet, link, build.notify_response)
            if opened.station.time_sync:
                await self._set_time(packet, link)
            acc.outcome("control")
        elif packet.cn == "1011":
            await self._clock(opened, link)
            await self._answer(packet, link, build.data_response)
            acc.outcome("control")
        elif packet.cn in _ANSWERS:
            acc.outcome("control")
        else:
            # Uploads the contract has no place for (equipment status 2021, boot time 2081, 3020 info…).
            await self._answer(packet, link, build.data_response)
            acc.outcome("ignored")

    async def _data(self, opened: Opened, raw: bytes, link: Link) -> None:
        packet, acc = opened.packet, self.accounting
        codes = self.book.codes(packet.mn)
        result = to_reading(packet, opened.area, opened.station, codes, self.now(), self.options.max_future)
        if isinstance(result, ConvertError):
            letter = DeadLetter(raw, result.reason, result.detail, packet.mn, link.peer, self.now())
            await self._refuse(letter, packet, link)
            return
        key: DedupKey = (packet.mn, packet.cn, result.ts, packet.pno or 0)
        digest = hashlib.blake2b(packet.cp_raw, digest_size=16).digest()
        if self._seen.get(key) == digest:
            # A resend after a lost or late 9014: already accepted downstream, just answer again.
            await self._answer(packet, link, build.data_response)
            acc.outcome("duplicate", mn=packet.mn)
            return
        reading = self._assemble(packet, result)
        try:
            await self.downstream.deliver([reading])
        except DownstreamError as exc:
            acc.outcome("failed", type(exc).__name__, packet.mn)
            return
        self._remember(key, digest)
        await self._answer(packet, link, build.data_response)
        acc.outcome("delivered", mn=packet.mn)

    def _assemble(self, packet: Packet, reading: StationReading) -> StationReading:
        """For a split message, the union of the parts seen so far (the store keeps one row per time)."""
        if packet.pnum is None or packet.pno is None or packet.pnum < 2:
            return reading
        key: PartKey = (packet.mn, packet.cn, reading.ts)
        partial = self._partial.get(key)
        if partial is None or partial.pnum != packet.pnum:
            partial = self._partial[key] = _Partial(packet.pnum, {})
        partial.parts[packet.pno] = reading
        self._partial.move_to_end(key)
        ordered = [partial.parts[pno] for pno in sorted(partial.parts)]
        merged = ordered[0]
        for part in ordered[1:]:
            merged = merge(merged, part)
        if len(partial.parts) == partial.pnum:
            del self._partial[key]
            self.accounting.splits["complete"] += 1
        while len(self._partial) > self.options.max_partial:
            self._partial.popitem(last=False)
            self.accounting.splits["incomplete_evicted"] += 1
        return merged

    def _remember(self, key: DedupKey, digest: bytes) -> None:
        self._seen[key] = digest
        self._seen.move_to_end(key)
        while len(self._seen) > self.options.dedup_size:
            self._seen.popitem(last=False)

    async def _refuse(self, letter: DeadLetter, packet: Packet | None, link: Link) -> None:
        acc = self.accounting
        try:
            await self.downstream.reject(letter)
        except DownstreamError as exc:
            acc.outcome("failed", type(exc).__name__, letter.mn)
            return
        acc.outcome("rejected", letter.reason, letter.mn)
        if (packet is not None and self.options.ack_rejected and letter.reason in ACK_AFTER_DEAD_LETTER
                and packet.cn not in _ANSWERS):
            await self._answer(packet, link, build.data_response)

    async def _answer(self, packet: Packet, link: Link, builder: Callable[[Packet], bytes]) -> None:
        """Send the reply only when the packet's Flag asked for one."""
        if not packet.ack_requested:
            return
        reply = builder(packet)
        self.accounting.replies[reply[6:].split(b"CN=", 1)[1][:4].decode()] += 1
        await link.send(reply)

    async def _set_time(self, packet: Packet, link: Link) -> None:
        self.accounting.replies["1012"] += 1
        await link.send(build.set_time(mn=packet.mn, st=packet.st, pw=packet.pw, version=packet.version,
                                       moment=self.now()))

    async def _clock(self, opened: Opened, link: Link) -> None:
        """A 1011 upload carries the station's clock: record the offset, correct it when too far off."""
        text = opened.area.fields.get("SystemTime", "")
        station_time = parse_datatime(text, opened.station)
        if station_time is None:
            return
        offset = station_time - self.now()
        self.accounting.station(opened.packet.mn).clock_offset_s = round(offset.total_seconds(), 3)
        if opened.station.time_sync and abs(offset) > self.options.max_clock_offset:
            await self._set_time(opened.packet, link)

    async def request_time(self, mn: str) -> bool:
        """Ask a station for its clock (1011) on the link it last used; ``False`` if it is not connected."""
        link, last = self.routes.get(mn), self._last.get(mn)
        if link is None or last is None:
            return False
        self.accounting.replies["1011"] += 1
        await link.send(build.get_time(mn=mn, st=last.st, pw=last.pw, version=last.version, moment=self.now()))
        return True

    def forget(self, link: Link) -> None:
        """A link closed: drop the routes that point at it."""
        for mn in self._spoke.pop(id(link), set()):
            if self.routes.get(mn) is link:
                del self.routes[mn]

