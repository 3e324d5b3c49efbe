"""Settings sections of the alert workflow and its API (declared in ``gulou.settings``), read in one place."""

from __future__ import annotations

from gulou.settings import ApiSettings, Settings, WorkflowSettings

__all__ = ["ApiSettings", "WorkflowSettings", "api_section", "workflow_section"]


def workflow_section(settings: Settings) -> WorkflowSettings:
    """``settings.workflow``."""
    return settings.workflow


def api_section(settings: Settings) -> ApiSettings:
    """``settings.api``."""
    return settings.api
