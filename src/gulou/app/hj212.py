"""``gulou hj212``: the HJ 212 station gateway built from settings, alone or inside ``gulou run``.

Stations are the registry's devices with an ``hj212`` block; their passwords and SM4 keys come from the
secrets file (``GULOU_HJ212__SECRETS_FILE``), never from the repository. Readings go to the broker as the
contract's JSON, refused packets as dead letters on ``gulou/deadletters/hj212``; a station is answered
only once the broker has acknowledged what it sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from gulou.backoff import Backoff
from gulou.devices.registry import Registry
from gulou.hj212.downstream import DownstreamError
from gulou.hj212.gateway import Gateway, GatewayOptions
from gulou.hj212.mqtt import MqttDownstream
from gulou.hj212.server import Hj212Server, ServerLimits
from gulou.hj212.simulator import FAULTS, FaultKind, FaultPlan, StationEncoder
from gulou.hj212.station_client import SimulatedStation, run_stations
from gulou.hj212.stations import StationBook, load_secrets
from gulou.ops.service import Endpoint
from gulou.settings import BrokerAddress, Settings
from gulou.simulators.scenario import Scenario

log = logging.getLogger(__name__)
# How often a running gateway logs its figures (operators read them in the service's log).
REPORT_EVERY_S = 60.0
# The field faults a simulated station shows unless told otherwise: each on about one packet in fifty.
FIELD_FAULT_RATE = 0.02


class Hj212Error(RuntimeError):
    """The gateway cannot start: not configured, a station without its password, an unreadable secrets file."""


def station_book(settings: Settings, registry: Registry) -> StationBook:
    """The registry's HJ 212 stations with their secrets; ``Hj212Error`` says what is missing."""
    stations = [d.hj212 for d in registry if d.hj212 is not None]
    section = settings.hj212
    try:
        secrets = load_secrets(section.secrets_file) if section.secrets_file else {}
        book = StationBook(stations, secrets)
    except ValueError as exc:
        hint = "" if section.secrets_file else " (no secrets file: set GULOU_HJ212__SECRETS_FILE)"
        raise Hj212Error(f"{exc}{hint}") from None
    if not len(book):
        raise Hj212Error(f"no device of {registry.source} has an hj212 block: there is no station to serve")
    return book


def downstream_for(settings: Settings, broker: BrokerAddress) -> MqttDownstream:
    """The MQTT downstream to ``broker`` with the configured credentials."""
    mqtt = settings.mqtt
    return MqttDownstream(broker.host, broker.port, username=mqtt.username, password=mqtt.secret(),
                          client_id=settings.hj212.client_id, extended=settings.hj212.extended, tls=broker.tls,
                          ca_file=str(mqtt.ca_file) if mqtt.ca_file else None)


@contextlib.asynccontextmanager
async def open_gateway(settings: Settings, registry: Registry, broker: BrokerAddress,
                       stop: asyncio.Event | None = None) -> AsyncIterator[Hj212Server]:
    """A listening gateway for the block; links are closed and the downstream disconnected after it."""
    section = settings.hj212
    listen = section.address()
    if listen is None:
        raise Hj212Error("the HJ 212 gateway is off: give --listen HOST:PORT (or GULOU_HJ212__LISTEN)")
    book = station_book(settings, registry)
    downstream = downstream_for(settings, broker)
    await _connect(downstream, broker, stop)
    options = GatewayOptions(ack_rejected=section.ack_rejected, max_future=timedelta(seconds=section.max_future_s))
    limits = ServerLimits(max_connections=section.max_connections, max_segment=section.max_segment,
                          idle_timeout_s=section.idle_timeout_s, write_timeout_s=section.write_timeout_s)
    server = Hj212Server(Gateway(book, downstream, options), limits)
    try:
        host, port = await server.start(*listen)
        log.info("hj212 gateway on %s:%s for %s stations, publishing to %s:%s", host, port, len(book), broker.host,
                 broker.port)
        yield server
    finally:
        await server.stop()
        await downstream.close()


async def _connect(downstream: MqttDownstream, broker: BrokerAddress, stop: asyncio.Event | None) -> None:
    """Connect, retrying while the broker is away (a station waits for its answer meanwhile)."""
    backoff = Backoff(0.5, 10.0)
    while True:
        try:
            await downstream.start()
            return
        except DownstreamError as exc:
            if stop is None:
                raise Hj212Error(str(exc)) from None
            wait = backoff.next()
            log.warning("hj212 gateway: broker %s:%s not reachable (%s); retrying in %.1f s", broker.host,
                        broker.port, exc, wait)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
            if stop.is_set():
                raise Hj212Error("stopped before the broker could be reached") from None


async def run_gateway(settings: Settings, registry: Registry, broker: BrokerAddress, stop: asyncio.Event,
                      on_ready: Callable[[Hj212Server], Awaitable[Any]] | None = None,
                      endpoint: Endpoint | None = None) -> dict[str, Any]:
    """Serve stations until ``stop`` is set; returns the gateway's final figures.

    Its figures go to ``endpoint`` (the process's ``/metrics`` and ``/healthz``) when given one; alone, the
    gateway serves its own on ``GULOU_OPS__LISTEN`` when that is set.
    """
    async with open_gateway(settings, registry, broker, stop) as server:
        downstream = server.gateway.downstream
        listen = settings.ops.listen if endpoint is None else None
        target = endpoint or (Endpoint() if listen else None)
        if target is not None:
            target.add_gateway(server.stats, lambda: downstream.connected)
        ops = target.serve(listen) if target is not None and listen else None
        try:
            if on_ready is not None:
                await on_ready(server)
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), REPORT_EVERY_S)
                _report(server.stats())
            figures = server.stats()
        finally:
            if ops is not None:
                ops.stop()
    _report(figures)
    return figures


def _report(figures: dict[str, Any]) -> None:
    packets, connections = figures.get("packets", {}), figures.get("connections", {})
    log.info("hj212 gateway: %s links open; packets received %s, delivered %s, duplicate %s, rejected %s, "
             "failed %s", connections.get("open", 0), packets.get("received", 0), packets.get("delivered", 0),
             packets.get("duplicate", 0), packets.get("rejected", 0), packets.get("failed", 0))


async def simulate_stations(settings: Settings, registry: Registry, host: str, port: int, *,
                            scenario: Scenario | None = None, seed: int = 0, start: datetime | None = None,
                            sim_duration_s: float = 3600.0, speed: float = 0.0,
                            fault_rates: dict[str, float] | None = None,
                            stop: asyncio.Event | None = None) -> dict[str, Any]:
    """The registry's HJ 212 stations speaking to a gateway at ``host:port``; per-station figures.

    Each station sends real-time data from the device simulators (daily patterns, the scenario's
    incidents, the gas analysers' nightly calibration flagged C), its minute and hourly means and
    heartbeats, with the field faults at ``fault_rates`` (default: every kind at ``FIELD_FAULT_RATE``).
    Passwords and keys come from the same secrets file as the gateway's. Air loggers speak HJ 212-2017,
    water loggers HJ 212-2025 (Flag 9), as the field has them.
    """
    stations = [d.hj212 for d in registry if d.hj212 is not None]
    if not stations:
        raise Hj212Error(f"no device of {registry.source} has an hj212 block: no station to simulate")
    section = settings.hj212
    try:
        secrets = load_secrets(section.secrets_file) if section.secrets_file else {}
    except ValueError as exc:
        raise Hj212Error(str(exc)) from None
    rates: dict[FaultKind, float] = {kind: FIELD_FAULT_RATE for kind in FAULTS}
    for kind, rate in (fault_rates or {}).items():
        if kind not in FAULTS:
            raise Hj212Error(f"unknown HJ 212 fault {kind!r}; known: {', '.join(FAULTS)}")
        rates[kind] = rate
    simulated = []
    for n, station in enumerate(stations):
        secret = secrets.get(station.mn)
        if station.auth == "password" and (secret is None or secret.password is None):
            raise Hj212Error(f"station {station.mn} ({station.device_id}) needs its password from the secrets "
                             "file (GULOU_HJ212__SECRETS_FILE)")
        encoder = StationEncoder(station, secret.password if secret else None,
                                 version=2 if station.device_type == "water_station" else 1,
                                 sm4_key=secret.sm4_key if secret else None)
        simulated.append(SimulatedStation(encoder, FaultPlan(rates, seed=seed * 1000 + n)))
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    # In real time the stations start now; played faster (or flat out) they replay the hours up to now, so no
    # packet is dated in the future.
    first = start or (now if speed == 1 else now - timedelta(seconds=sim_duration_s))
    return await run_stations(host, port, simulated, registry, scenario=scenario, seed=seed, start=first,
                              sim_duration_s=sim_duration_s, speed=speed, stop=stop)
