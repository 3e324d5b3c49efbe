"""Settings sections of the alert workflow and its HTTP API (plain models: ``gulou.settings`` nests them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WorkflowSettings(_Section):
    """Workflow store, policy files and work-order dispatch (``GULOU_WORKFLOW__*``; ``GULOU_DATABASE_URL``)."""

    # None: the embedded store file (``sqlite:///<GULOU_STORE>``); PostgreSQL: postgresql+psycopg://...
    database_url: SecretStr | None = None
    # Folder with escalation.yaml, roster.yaml and routes.yaml; None: the shipped files in gulou/data.
    policy_dir: Path | None = None
    dispatch_url: str | None = None
    dispatch_secret: SecretStr | None = None
    dispatch_secret_file: Path | None = None
    # Callbacks older than this (by their timestamp header) are refused, so a captured one cannot be replayed.
    signature_max_age_s: float = 300.0
    flush_s: float = 2.0

    def url(self, store: Path) -> str:
        """The database URL: the configured one, else the embedded SQLite store file."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{store}"

    def dispatch_key(self) -> str | None:
        """The shared secret for work-order requests and callbacks, from the value or its file."""
        if self.dispatch_secret is not None:
            return self.dispatch_secret.get_secret_value()
        if self.dispatch_secret_file is not None:
            return self.dispatch_secret_file.read_text(encoding="utf-8").strip()
        return None


class ApiSettings(_Section):
    """``gulou serve``: where it listens, the operators' tokens file, the public URL for links."""

    listen: str = "127.0.0.1:8088"
    tokens_file: Path | None = None
    # Base URL people reach the API at (links in robot messages and in Grafana).
    public_url: str | None = None
    # Let GET requests through without a token (a trusted network, for Grafana's links).
    open_reads: bool = False


def workflow_section(settings: Any) -> WorkflowSettings:
    """``settings.workflow`` (defaults when the settings carry no such section)."""
    section = getattr(settings, "workflow", None)
    return section if isinstance(section, WorkflowSettings) else WorkflowSettings()


def api_section(settings: Any) -> ApiSettings:
    """``settings.api`` (defaults when the settings carry no such section)."""
    section = getattr(settings, "api", None)
    return section if isinstance(section, ApiSettings) else ApiSettings()
