"""Read side of the embedded store: readings, dead letters, statuses, accounting totals and completeness."""

from __future__ import annotations

import base64
import json
from abc import ABC, abstractmethod
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from gulou.devices.base import DEFAULT_PERIOD
from gulou.devices.registry import Registry

HOUR_MS = 3_600_000
# Figures of a collector's health["spool"] that add up across collectors into stats()["spool"].
SPOOL_KEYS = ("depth", "points", "bytes", "max_bytes")


def hour_of(ts_ms: int) -> int:
    """Start of the UTC hour containing ``ts_ms``."""
    return ts_ms - ts_ms % HOUR_MS


def rfc3339(ts_ms: int) -> str:
    """Epoch milliseconds as RFC 3339 UTC with a ``Z``."""
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class StoreQueries(ABC):
    """The queries ``gulou query``, ``stats``, ``deadletters``, recompute and the dashboards' figures run."""

    @abstractmethod
    def _query(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one read statement on the store's connection."""

    def query_readings(self, domain: str | None = None, device: str | None = None, since_ms: int | None = None,
                       until_ms: int | None = None, limit: int | None = None,
                       period: str | None = DEFAULT_PERIOD) -> list[dict[str, Any]]:
        """Readings in ``[since_ms, until_ms)``, ordered by time then device, metrics flattened in.

        ``period`` picks real-time readings (the default), a station's ``minute``/``hour``/``day`` means, or
        all of them (``None``). Station readings also carry ``<metric>_flag`` (each data flag),
        ``<metric>_invalid`` (a value whose flag does not count; never under the metric's own name),
        ``period`` when not real-time and ``backfill``.
        """
        where, args = _filters(domain=domain, device_id=device, since_ms=since_ms, until_ms=until_ms, period=period)
        sql = (f"SELECT device_id, domain, type, street, site, ts_ms, seq, tags, vals, period, flags, invalid, backfill"
               f" FROM readings{where} ORDER BY ts_ms, device_id, period")
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        rows = []
        for device_id, dom, typ, street, site, ts_ms, seq, tags, vals, kind, flags, invalid, backfill in self._query(
                sql, args):
            row: dict[str, Any] = {"device_id": device_id, "domain": dom, "type": typ, "street": street,
                                   "site": site, "ts": rfc3339(ts_ms), "seq": seq}
            if kind != DEFAULT_PERIOD:
                row["period"] = kind
            if tags:
                row.update(json.loads(tags))
            row.update(json.loads(vals))
            if invalid:
                row.update({f"{k}_invalid": v for k, v in json.loads(invalid).items()})
            if flags:
                row.update({f"{k}_flag": v for k, v in json.loads(flags).items()})
            if backfill:
                row["backfill"] = True
            rows.append(row)
        return rows

    def deadletters(self, limit: int | None = None, reason: str | None = None,
                    source: str | None = None) -> list[dict[str, Any]]:
        """Dead letters, newest first, optionally of one reason or one source (``mqtt``, ``hj212``)."""
        sql = "SELECT topic, reason, detail, payload, received_ms, device_id, domain, source, mn FROM deadletters"
        where, args = _filters(reason=reason, source=source)
        sql += where + " ORDER BY received_ms DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        out = []
        for topic, why, detail, payload, received_ms, device_id, dom, origin, mn in self._query(sql, args):
            raw = bytes(payload)
            row: dict[str, Any] = {"topic": topic, "reason": why, "detail": detail,
                                   "payload": raw.decode("utf-8", errors="replace"),
                                   "received_at": rfc3339(received_ms), "device_id": device_id, "domain": dom,
                                   "source": origin, "mn": mn}
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                row["payload_b64"] = base64.b64encode(raw).decode("ascii")
            out.append(row)
        return out

    def status_history(self, device: str | None = None) -> list[dict[str, Any]]:
        """Status events (online/offline, battery, rssi), ordered by time then device."""
        where, args = _filters(device_id=device)
        sql = (f"SELECT device_id, domain, street, site, ts_ms, online, battery, rssi FROM statuses{where}"
               " ORDER BY ts_ms, device_id")
        return [
            {"device_id": d, "domain": dom, "street": street, "site": site, "ts": rfc3339(ts),
             "online": bool(online), "battery": battery, "rssi": rssi}
            for d, dom, street, site, ts, online, battery, rssi in self._query(sql, args)
        ]

    def totals(self) -> dict[str, int]:
        """Messages per outcome (received, stored, rejected, spooled, replayed) over the whole store."""
        totals = dict.fromkeys(("received", "stored", "rejected", "spooled", "replayed"), 0)
        for outcome, n in self._query("SELECT outcome, SUM(n) FROM counts GROUP BY outcome"):
            totals[outcome] = int(n)
        return totals

    def stats(self) -> dict[str, Any]:
        """Accounting totals, per domain/reason/device, spool totals and each collector's health."""
        totals = self.totals()
        by_domain: dict[str, dict[str, int]] = {}
        by_device: dict[str, dict[str, int]] = {}
        for key, table in (("domain", by_domain), ("device_id", by_device)):
            sql = (f"SELECT {key}, outcome, SUM(n) FROM counts WHERE outcome IN ('received', 'stored', 'rejected')"
                   f" GROUP BY {key}, outcome ORDER BY {key}")
            for name, outcome, n in self._query(sql):
                table.setdefault(name, {"received": 0, "stored": 0, "rejected": 0})[outcome] = int(n)
        by_source: dict[str, dict[str, int]] = {}
        for name, outcome, n in self._query(
                "SELECT source, outcome, SUM(n) FROM counts WHERE outcome IN ('received', 'stored', 'rejected')"
                " GROUP BY source, outcome ORDER BY source"):
            by_source.setdefault(name, {"received": 0, "stored": 0, "rejected": 0})[outcome] = int(n)
        by_reason = {reason: int(n) for reason, n in self._query(
            "SELECT reason, SUM(n) FROM counts WHERE outcome = 'rejected' GROUP BY reason ORDER BY SUM(n) DESC")}
        collectors: dict[str, dict[str, Any]] = {}
        for collector_id, updated_ms, health in self._query(
                "SELECT collector_id, updated_ms, health FROM health ORDER BY collector_id"):
            collectors[collector_id] = {**json.loads(health), "updated_at": rfc3339(updated_ms)}
        spool: dict[str, Any] = dict.fromkeys(SPOOL_KEYS, 0)
        for health in collectors.values():
            figures = health.get("spool") or {}
            for key in SPOOL_KEYS:
                spool[key] += int(figures.get(key) or 0)
        spool["fill_ratio"] = round(spool["bytes"] / spool["max_bytes"], 4) if spool["max_bytes"] else 0.0
        return {
            "received": totals["received"], "stored": totals["stored"], "rejected": totals["rejected"],
            "spooled": max(0, totals["spooled"] - totals["replayed"]),
            "by_domain": by_domain, "by_source": by_source, "by_reason": by_reason, "by_device": by_device,
            "spool": spool, "collectors": collectors,
        }

    def completeness(self, since_ms: int, until_ms: int, registry: Registry) -> list[dict[str, Any]]:
        """Per registered device per UTC hour in ``[since, until)``: expected, received, stored, rejected, ratio."""
        first = hour_of(since_ms)
        got: dict[tuple[str, int], dict[str, int]] = {}
        for device_id, hour, outcome, n in self._query(
                "SELECT device_id, hour_ms, outcome, SUM(n) FROM counts WHERE hour_ms >= ? AND hour_ms < ?"
                " AND outcome IN ('received', 'stored', 'rejected') GROUP BY device_id, hour_ms, outcome",
                (first, until_ms)):
            got.setdefault((device_id, hour), {})[outcome] = int(n)
        rows = []
        for hour in range(first, until_ms, HOUR_MS):
            for device in registry:
                counts = got.get((device.id, hour), {})
                expected_f = 3600 / device.interval_s
                expected: float | int = int(expected_f) if expected_f.is_integer() else round(expected_f, 3)
                stored = counts.get("stored", 0)
                rows.append({
                    "hour": rfc3339(hour), "hour_ms": hour, "device_id": device.id, "domain": device.domain,
                    "type": device.type, "street": device.street, "expected": expected,
                    "received": counts.get("received", 0), "stored": stored,
                    "rejected": counts.get("rejected", 0), "ratio": round(stored / expected_f, 4),
                })
        return rows


def _filters(**given: Any) -> tuple[str, list[Any]]:
    clauses, args = [], []
    for name, value in given.items():
        if value is None:
            continue
        if name == "since_ms":
            clauses.append("ts_ms >= ?")
        elif name == "until_ms":
            clauses.append("ts_ms < ?")
        else:
            clauses.append(f"{name} = ?")
        args.append(value)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args
