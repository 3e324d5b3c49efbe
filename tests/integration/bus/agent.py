"""A bus client in its own process, for tests that SIGKILL it: ``python -m tests.integration.bus.agent MODE ...``.

Modes (the cluster URLs are comma-separated; each prints one JSON line once it has done its part, then waits):
- ``hold URLS PARTITIONS NAME OWNER TTL``: acquire the lease and keep renewing it;
- ``take URLS PARTITIONS GROUP COUNT ACK_WAIT``: fetch COUNT messages of a shared group, never acknowledge.
"""

from __future__ import annotations

import asyncio
import json
import sys

from gulou.bus.base import Topology
from gulou.bus.jetstream import JetStreamBus


async def hold(urls: list[str], partitions: int, name: str, owner: str, ttl: float) -> None:
    bus = JetStreamBus(urls, Topology(partitions), lease_ttl_s=ttl)
    await bus.start()
    lease = await bus.leases.acquire(name, owner)
    print(json.dumps({"acquired": lease is not None, "revision": lease.revision if lease else None}), flush=True)
    while lease is not None:
        await asyncio.sleep(ttl / 3)
        lease = await bus.leases.renew(lease) or lease


async def take(urls: list[str], partitions: int, group: str, count: int, ack_wait: float) -> None:
    bus = JetStreamBus(urls, Topology(partitions), ack_wait_s=ack_wait)
    await bus.start()
    consumer = await bus.consumer(group)
    taken: list[str] = []
    while len(taken) < count:
        taken.extend(d.msg_id for d in await consumer.fetch(count - len(taken), 1.0))
    print(json.dumps({"taken": taken}), flush=True)
    await asyncio.Event().wait()


def main(argv: list[str]) -> None:
    mode, urls, partitions = argv[0], argv[1].split(","), int(argv[2])
    if mode == "hold":
        asyncio.run(hold(urls, partitions, argv[3], argv[4], float(argv[5])))
    elif mode == "take":
        asyncio.run(take(urls, partitions, argv[3], int(argv[4]), float(argv[5])))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
