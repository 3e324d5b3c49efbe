"""Upload the datasource, the folder and the dashboards to a running Grafana, idempotently."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from gulou.dashboards.common import DATASOURCE_NAME, DATASOURCE_TYPE, DATASOURCE_UID, FOLDER_TITLE, FOLDER_UID

log = logging.getLogger(__name__)


class PushError(RuntimeError):
    """Grafana refused or could not be reached; the message says which item and why."""


@dataclass(frozen=True)
class InfluxTarget:
    """Where Grafana's datasource should point: the InfluxQL endpoint, database (bucket) and token."""

    url: str
    database: str
    token: str | None = None


def datasource_model(target: InfluxTarget) -> dict[str, Any]:
    """The datasource Grafana gets: InfluxQL against a 1.x database or a 2.x/3.x bucket mapped by DBRP."""
    model: dict[str, Any] = {
        "uid": DATASOURCE_UID,
        "name": DATASOURCE_NAME,
        "type": DATASOURCE_TYPE,
        "access": "proxy",
        "url": target.url,
        "isDefault": True,
        "jsonData": {"version": "InfluxQL", "dbName": target.database, "httpMode": "POST"},
    }
    if target.token:
        # InfluxDB 2.x/3.x accept the v1 query API with a token in the Authorization header.
        model["jsonData"]["httpHeaderName1"] = "Authorization"
        model["secureJsonData"] = {"httpHeaderValue1": f"Token {target.token}"}
    return model


@dataclass
class PushResult:
    """What happened to each item, for progress lines and the ``--json`` summary."""

    grafana: str
    datasource: str = ""
    folder: str = ""
    dashboards: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return asdict(self)


def _status(exc: Exception) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def push(api: Any, target: InfluxTarget, dashboards: dict[str, dict[str, Any]], grafana_url: str,
         progress: Callable[[str], None] = lambda _line: None) -> PushResult:
    """Create or update the datasource (by UID), the folder and every dashboard (overwrite)."""
    from grafana_client.client import GrafanaException

    result = PushResult(grafana=grafana_url)
    try:
        result.datasource = _upsert_datasource(api, datasource_model(target))
        progress(f"datasource {DATASOURCE_UID}: {result.datasource}")
        result.folder = _ensure_folder(api)
        progress(f"folder {FOLDER_TITLE} ({FOLDER_UID}): {result.folder}")
        for name, board in dashboards.items():
            response = api.dashboard.update_dashboard(
                {"dashboard": {**board, "id": None, "version": None}, "folderUid": FOLDER_UID, "overwrite": True,
                 "message": "gulou dashboards push"})
            result.dashboards[board["uid"]] = str(response.get("status", "success"))
            progress(f"dashboard {board['uid']} ({name}): {result.dashboards[board['uid']]}")
    except GrafanaException as exc:
        raise PushError(f"Grafana at {grafana_url}: {exc}") from exc
    except OSError as exc:
        raise PushError(f"Grafana at {grafana_url} unreachable: {exc}") from exc
    return result


def _upsert_datasource(api: Any, model: dict[str, Any]) -> str:
    from grafana_client.client import GrafanaClientError

    try:
        current = api.datasource.get_datasource_by_uid(DATASOURCE_UID)
    except GrafanaClientError as exc:
        if _status(exc) != 404:
            raise
        api.datasource.create_datasource(model)
        return "created"
    # Keep Grafana's numeric id; everything else is ours.
    api.datasource.update_datasource_by_uid(DATASOURCE_UID, {**model, "id": current.get("id")})
    return "updated"


def _ensure_folder(api: Any) -> str:
    from grafana_client.client import GrafanaClientError

    try:
        current = api.folder.get_folder(FOLDER_UID)
    except GrafanaClientError as exc:
        if _status(exc) != 404:
            raise
        api.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID)
        return "created"
    if current.get("title") != FOLDER_TITLE:
        api.folder.update_folder(FOLDER_UID, title=FOLDER_TITLE, overwrite=True)
        return "updated"
    return "unchanged"


def connect(url: str, token: str | None, timeout_s: float = 10.0) -> Any:
    """A grafana-client API object for the URL, authenticated with a service-account token when given."""
    from grafana_client.api import GrafanaApi

    return GrafanaApi.from_url(url, credential=token, timeout=timeout_s)
