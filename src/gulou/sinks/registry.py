"""The registration table of sinks: a new store is one module plus one line here."""

from __future__ import annotations

from gulou.settings import Settings
from gulou.sinks.embedded import EmbeddedStore
from gulou.sinks.influx import InfluxSink
from gulou.tsdb.writer import Sink

SINKS: dict[str, type[Sink]] = {
    "embedded": EmbeddedStore,
    "influx": InfluxSink,
}
# Always open: dead letters, accounting and health stay in the embedded store whichever sink takes readings.
ACCOUNTING = "embedded"


def open_readings_sink(settings: Settings) -> Sink | None:
    """The configured sink that takes readings instead of the embedded store, or None when none is.

    Raises ``ValueError`` for a half-configured sink, or when more than one is configured.
    """
    opened: dict[str, Sink] = {}
    try:
        for name, kind in SINKS.items():
            if name != ACCOUNTING and (sink := kind.from_settings(settings)) is not None:
                opened[name] = sink
    except ValueError:
        _close_all(opened)
        raise
    if len(opened) > 1:
        _close_all(opened)
        raise ValueError(f"several sinks configured ({', '.join(opened)}); configure one")
    return next(iter(opened.values()), None)


def _close_all(sinks: dict[str, Sink]) -> None:
    for sink in sinks.values():
        sink.close()
