"""The registration table of sources: a new transport is one module plus one line here."""

from __future__ import annotations

from gulou.settings import Settings
from gulou.sources.base import Source, SourceOptions
from gulou.sources.mqtt import MqttSource

SOURCES: dict[str, type[Source]] = {
    "mqtt": MqttSource,
}
DEFAULT_SOURCE = "mqtt"


def open_source(settings: Settings, options: SourceOptions, name: str = DEFAULT_SOURCE) -> Source:
    """The source ``name`` built from its settings section; ``ValueError`` when unknown or not configured."""
    try:
        kind = SOURCES[name]
    except KeyError:
        raise ValueError(f"unknown source {name!r}: known are {', '.join(sorted(SOURCES))}") from None
    source = kind.from_settings(settings, options)
    if source is None:
        raise ValueError(f"source {name!r} is not configured")
    return source
