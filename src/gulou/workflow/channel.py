"""The rules service's way into the workflow: a channel that records every transition and runs the workflow."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Self

from gulou.channels.base import Channel, ChannelContext
from gulou.rules.alerts import AlertTransition
from gulou.settings import Settings
from gulou.workflow.dispatch import Dispatcher
from gulou.workflow.policy import load_policy
from gulou.workflow.senders import senders_from_settings
from gulou.workflow.service import Clock, WorkflowService, wall_clock
from gulou.workflow.store import WorkflowStore

log = logging.getLogger(__name__)


def build_service(settings: Settings, clock: Clock = wall_clock, public_url: str | None = None,
                  store_file: Path | None = None) -> WorkflowService:
    """The workflow service as configured: its database (migrated), policy files, senders and dispatcher."""
    wf = settings.workflow
    store = WorkflowStore(wf.url(store_file or settings.store))
    secret = wf.dispatch_key()
    dispatcher = None
    if wf.dispatch_url and secret:
        callback = f"{public_url.rstrip('/')}/work-orders/callback" if public_url else None
        dispatcher = Dispatcher(wf.dispatch_url, secret, callback_url=callback)
    elif wf.dispatch_url:
        log.warning("work-order dispatch needs GULOU_WORKFLOW__DISPATCH_SECRET (or _FILE); dispatch is off")
    return WorkflowService(store, load_policy(wf.policy_dir), senders_from_settings(settings), dispatcher=dispatcher,
                           base_url=public_url, clock=clock, flush_s=wf.flush_s)


class WorkflowChannel(Channel):
    """Records each transition in the workflow store; routing, silences, limits and escalation happen there."""

    name = "workflow"

    def __init__(self, service: WorkflowService) -> None:
        self.service = service

    @classmethod
    def from_settings(cls, settings: Settings, context: ChannelContext) -> Self | None:
        """On with the alert store (the workflow tables go in the same file) or a configured database URL."""
        if context.store is None and settings.workflow.database_url is None:
            return None
        return cls(build_service(settings, context.clock or wall_clock, settings.api.public_url,
                                 context.store.path if context.store is not None else None))

    async def send(self, transition: AlertTransition) -> None:
        """Record the transition and queue its notifications (off the event loop: it is database work)."""
        await asyncio.to_thread(self.service.on_transition, transition.to_json())

    async def run(self) -> None:
        """Escalate, send within the robots' limits and dispatch work orders, for as long as the service runs."""
        try:
            await self.service.run()
        finally:
            self.service.store.close()
