"""``gulou serve``: the alert API under uvicorn until interrupted."""

from __future__ import annotations

import logging

import uvicorn

from gulou.api.server import build_app, parse_listen
from gulou.settings import Settings

log = logging.getLogger(__name__)


def run_api(settings: Settings, listen: str) -> None:
    """Serve the API on ``HOST:PORT`` (OpenAPI at /openapi.json, browsable at /docs)."""
    host, port = parse_listen(listen)
    app = build_app(settings)
    log.info("alert API on http://%s:%d (OpenAPI at /docs)", host, port)
    uvicorn.run(app, host=host, port=port, log_level=settings.log_level.lower(), access_log=False)
