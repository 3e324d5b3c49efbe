"""Schemathesis: requests generated from the OpenAPI spec never break the API or its own spec."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.schemas import BaseSchema
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gulou.workflow.store import WorkflowStore
from tests.integration.api.conftest import bearer
from tests.workflow_data import T0, minutes, payload

pytestmark = pytest.mark.integration


@pytest.fixture
def api_schema(app: FastAPI, store: WorkflowStore) -> BaseSchema:
    for n in range(3):
        alert, _ = store.record_engine_event(payload(device=f"pk-{n}", first_seen=T0 + minutes(n)), T0)
        store.work_orders.create(alert.id, T0)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture
def http(app: FastAPI) -> TestClient:
    return TestClient(app, base_url="http://testserver")


def httpx_kwargs(case: schemathesis.Case[Any]) -> dict[str, Any]:
    """The generated request for an httpx client (the project's requests stack is urllib3-future's)."""
    kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=bearer("张三"))
    if "data" in kwargs and isinstance(kwargs["data"], bytes | str):
        kwargs["content"] = kwargs.pop("data")
    return {k: v for k, v in kwargs.items() if k in ("method", "url", "headers", "params", "json", "content",
                                                     "data", "cookies", "files")}


schema = schemathesis.pytest.from_fixture("api_schema")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_generated_requests(case: schemathesis.Case[Any], http: TestClient) -> None:
    response = http.request(**httpx_kwargs(case))
    # The conformance checks of the spec; auth and refusals are tested one by one in test_api.py.
    case.validate_response(response, headers=bearer("张三"), checks=CHECKS)
