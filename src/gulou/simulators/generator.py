"""The pure message generator: registry + scenario + seed + start → messages in simulated-time order."""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from gulou.devices.contract import status_topic, telemetry_topic
from gulou.devices.registry import Device, Registry
from gulou.simulators.base import Active, Environment, Pattern
from gulou.simulators.faults import FaultInjector, encode
from gulou.simulators.model import SimMessage, default_start, device_rng, rfc3339
from gulou.simulators.patterns import pattern_for
from gulou.simulators.scenario import Scenario, Scheduled, schedule
from gulou.timeutil import CHINA_TZ

# Event priorities at the same instant: a device goes silent before its report would be due.
_SILENT, _BACK, _REPORT = 0, 1, 2


class Generator:
    """Builds the stream of one simulation run; holds per-device state, no I/O.

    Iterate ``messages()`` for the whole run (it ends with every device's retained ``offline`` unless
    ``offline_at_end`` is false); a publisher that stops early calls ``closing(sim_time)`` instead.
    """

    def __init__(
        self,
        registry: Registry,
        scenario: Scenario | None = None,
        seed: int = 0,
        start: datetime | None = None,
        sim_duration: float | timedelta | None = None,
        end: datetime | None = None,
        fault_rates: Mapping[str, float] | None = None,
        qos: int = 1,
        offline_at_end: bool = True,
    ) -> None:
        self.registry = registry
        self.offline_at_end = offline_at_end
        self.scenario = scenario or Scenario(name="quiet")
        self.seed = seed
        self.start = default_start(datetime.now(UTC)) if start is None else _aware(start)
        if isinstance(sim_duration, timedelta):
            sim_duration = sim_duration.total_seconds()
        if end is not None:
            horizon = (_aware(end) - self.start).total_seconds()
            sim_duration = horizon if sim_duration is None else min(sim_duration, horizon)
        if sim_duration is not None and sim_duration < 0:
            raise ValueError("the simulated duration must not be negative (end before start?)")
        self.horizon_s = sim_duration
        self.qos = qos
        self.incidents: dict[str, list[Scheduled]] = schedule(self.scenario, registry)
        rates: dict[str, float] = {str(k): v for k, v in self.scenario.faults.items()}
        rates.update(fault_rates or {})
        self.faults = FaultInjector(seed, rates)
        self.env = Environment(seed)
        self.devices: list[Device] = list(registry)
        self.patterns: list[Pattern] = [pattern_for(d, seed, self.env) for d in self.devices]
        self.online: dict[str, bool] = {}
        self.seq: Counter[str] = Counter()
        self.sim_time = self.start
        self._closed = False

    def messages(self) -> Iterator[SimMessage]:
        """Every message of the run in simulated-time order (endless when no horizon is set)."""
        for device, pattern in zip(self.devices, self.patterns, strict=True):
            self.online[device.id] = True
            yield self._status(device, pattern, self.start, online=True)
        heap: list[tuple[float, int, int]] = []
        for i, device in enumerate(self.devices):
            phase = device_rng(self.seed, "phase", device.id).randrange(max(1, device.interval_s))
            heap.append((float(phase), _REPORT, i))
            for inc in self.incidents.get(device.id, []):
                if inc.kind == "device_silent":
                    heap.append((inc.start_s, _SILENT, i))
                    heap.append((inc.end_s, _BACK, i))
        heapq.heapify(heap)
        while heap:
            offset, event, i = heapq.heappop(heap)
            if self.horizon_s is not None and offset >= self.horizon_s:
                break
            device, pattern = self.devices[i], self.patterns[i]
            moment = self.start + timedelta(seconds=offset)
            self.sim_time = moment
            if event == _SILENT:
                if self.online.get(device.id):
                    self.online[device.id] = False
                    yield self._status(device, pattern, moment, online=False)
                continue
            if event == _BACK:
                if not self._silent(device.id, offset):
                    self.online[device.id] = True
                    yield self._status(device, pattern, moment, online=True)
                continue
            heapq.heappush(heap, (offset + device.interval_s, _REPORT, i))
            if not self.online.get(device.id):
                continue
            yield from self._telemetry(device, pattern, moment, offset)
        end = self.start + timedelta(seconds=self.horizon_s) if self.horizon_s is not None else self.sim_time
        yield from self.closing(end)

    def closing(self, sim_time: datetime) -> list[SimMessage]:
        """Held-back messages, then a retained ``offline`` for every device still online (once only).

        Without ``offline_at_end`` the devices are left online: a pipeline that keeps running after the
        simulation (``gulou demo``) should not see every device announce it went away.
        """
        if self._closed:
            return []
        self._closed = True
        self.sim_time = sim_time
        out = [replace(m, sim_time=sim_time) for m in self.faults.release()]
        if not self.offline_at_end:
            return out
        for device, pattern in zip(self.devices, self.patterns, strict=True):
            if self.online.get(device.id):
                self.online[device.id] = False
                out.append(self._status(device, pattern, sim_time, online=False))
        return out

    def _silent(self, device_id: str, offset: float) -> bool:
        return any(inc.kind == "device_silent" and inc.progress(offset) is not None
                   for inc in self.incidents.get(device_id, []))

    def _active(self, device_id: str, offset: float) -> Active:
        active: Active = {}
        for inc in self.incidents.get(device_id, []):
            progress = inc.progress(offset)
            if progress is not None:
                active[inc.kind] = (progress, inc)
        return active

    def _telemetry(self, device: Device, pattern: Pattern, moment: datetime, offset: float) -> list[SimMessage]:
        values = pattern.reading(moment, offset, self._active(device.id, offset))
        payload: dict[str, Any] = {"ts": rfc3339(moment), "seq": self.seq[device.id], **values}
        self.seq[device.id] += 1
        message = SimMessage(moment, telemetry_topic(device.domain, device.id), encode(payload), False, self.qos)
        return self.faults.process(message, payload, device)

    def _status(self, device: Device, pattern: Pattern, moment: datetime, online: bool) -> SimMessage:
        payload: dict[str, Any] = {"ts": rfc3339(moment), "state": "online" if online else "offline"}
        if pattern.battery is not None:
            payload["battery"] = pattern.battery
        payload["rssi"] = pattern.rssi
        return SimMessage(moment, status_topic(device.domain, device.id), encode(payload), True, self.qos)


def generate(
    registry: Registry,
    scenario: Scenario | None = None,
    seed: int = 0,
    start: datetime | None = None,
    sim_duration: float | timedelta | None = None,
    end: datetime | None = None,
    fault_rates: Mapping[str, float] | None = None,
    qos: int = 1,
    offline_at_end: bool = True,
) -> Iterator[SimMessage]:
    """Messages of a simulation run in simulated-time order; same arguments → byte-identical stream."""
    return Generator(registry, scenario, seed, start, sim_duration, end, fault_rates, qos,
                     offline_at_end).messages()


def _aware(moment: datetime) -> datetime:
    """Naive datetimes are read as Gulou local time."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=CHINA_TZ)
