"""``gulou simulate``: simulated devices publishing to the configured (or an embedded) broker."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from gulou.app.broker import broker_for
from gulou.settings import Settings
from gulou.simulators.publisher import SimConfig, SimProgress, SimSummary, run_simulation


async def simulate(config: SimConfig, settings: Settings, progress: Callable[[SimProgress], None],
                   stop: asyncio.Event, announce: Callable[[str], None]) -> SimSummary:
    """Publish until the simulation ends or ``stop`` is set; an embedded broker lives as long as the run."""
    async with broker_for(settings, announce) as broker:
        return await run_simulation(config, broker.address, progress, stop)
