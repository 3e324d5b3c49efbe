"""Building the API from the settings (``gulou serve`` runs it: ``gulou.app.serve``)."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from gulou.api.app import create_app
from gulou.api.auth import Operators
from gulou.settings import Settings
from gulou.workflow.store import WorkflowStore

log = logging.getLogger(__name__)


class ServeError(ValueError):
    """The API cannot start with this configuration."""


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8088`` for IPv6) into host and port."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ServeError(f"--listen {text!r}: expected HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


def build_app(settings: Settings, store: WorkflowStore | None = None) -> FastAPI:
    """The API over the configured workflow database, with the operators of the configured tokens file."""
    wf, api = settings.workflow, settings.api
    if api.tokens_file is None:
        raise ServeError("no operators: set GULOU_API__TOKENS_FILE to a YAML file of operators and tokens")
    operators = Operators.load(api.tokens_file)
    store = store or WorkflowStore(wf.url(settings.store))
    return create_app(store, operators, dispatch_secret=wf.dispatch_key(),
                      signature_max_age_s=wf.signature_max_age_s, open_reads=api.open_reads)

