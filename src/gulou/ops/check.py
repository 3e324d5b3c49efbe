"""What ``gulou health`` reads: the collectors' health reports kept in the embedded store, or a service's
``/healthz``; each turned into verdicts."""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.error
import urllib.request
from contextlib import closing
from pathlib import Path
from typing import Any

from gulou.ops.health import STALE_AFTER_S, State, Verdict, collector_verdict, select


def collector_reports(store: Path) -> dict[str, tuple[dict[str, Any], int]]:
    """client id -> (last health report, when it was written in epoch ms), read-only from the store's
    ``health`` table; an existing store no collector has reported to yet gives ``{}``."""
    if not store.exists():
        raise FileNotFoundError(f"no store at {store}")
    uri = f"{store.resolve().as_uri()}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as db:
        db.execute("PRAGMA busy_timeout = 5000")
        try:
            rows = db.execute("SELECT collector_id, updated_ms, health FROM health").fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return {}
            raise
    return {str(cid): (json.loads(health), int(updated_ms)) for cid, updated_ms, health in rows}


def check_collectors(store: Path, prefix: str | None = None, stale_after_s: float = STALE_AFTER_S,
                     now_ms: int | None = None) -> list[Verdict]:
    """One verdict per collector of this store (those of the client id ``prefix`` and its workers)."""
    try:
        reports = collector_reports(store)
    except FileNotFoundError:
        return [Verdict(prefix or "collectors", State.DOWN, (f"no store at {store}: has the collector started?",))]
    except sqlite3.Error as exc:
        return [Verdict(prefix or "collectors", State.DOWN, (f"cannot read {store}: {exc}",))]
    chosen = select(reports, prefix)
    if not chosen:
        who = f"collector {prefix}" if prefix else "any collector"
        return [Verdict(prefix or "collectors", State.DOWN, (f"no health report from {who} in {store}",))]
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    return [collector_verdict(cid, health, max(0.0, (now - updated_ms) / 1000), stale_after_s)
            for cid, (health, updated_ms) in sorted(chosen.items())]


def check_url(url: str, timeout_s: float = 5.0) -> list[Verdict]:
    """The verdicts a service's ``/healthz`` gives (down when it does not answer)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            body = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            body = json.loads(exc.read())
        except ValueError:
            return [Verdict(url, State.DOWN, (f"HTTP {exc.code}",))]
    except (OSError, ValueError) as exc:
        return [Verdict(url, State.DOWN, (f"no answer: {exc}",))]
    verdicts = []
    for component in body.get("components") or []:
        state = State[str(component.get("state", "down")).upper()]
        verdicts.append(Verdict(str(component.get("component", url)), state,
                                tuple(str(r) for r in component.get("reasons") or ()),
                                dict(component.get("figures") or {})))
    return verdicts or [Verdict(url, State[str(body.get("state", "down")).upper()])]


def healthz_url(listen: str | None) -> str | None:
    """The ``/healthz`` URL of a service listening on ``HOST:PORT`` (an any-address host is asked on loopback)."""
    if not listen:
        return None
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://{'[' + host + ']' if ':' in host else host}:{port}/healthz"
