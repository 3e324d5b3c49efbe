"""The API through FastAPI's test client, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from gulou.workflow.signing import signed_headers
from gulou.workflow.store import WorkflowStore
from tests.integration.api.conftest import DISPATCH_SECRET, bearer
from tests.workflow_data import T0, minutes, payload

pytestmark = pytest.mark.integration


def test_every_route_but_health_and_callback_needs_a_token(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    for method, path in (("get", "/alerts"), ("get", "/alerts/1"), ("post", "/alerts/1/ack"),
                         ("get", "/silences"), ("post", "/silences"), ("delete", "/silences/1")):
        answer = client.request(method.upper(), path, headers={"Authorization": "Bearer wrong-token-000000000"})
        assert answer.status_code == 401, (method, path)
        assert answer.headers["WWW-Authenticate"] == "Bearer"


def test_list_filter_and_read_one_with_history(client: TestClient, store: WorkflowStore) -> None:
    store.record_engine_event(payload(device="a", severity="critical"), T0)
    store.record_engine_event(payload(device="b", street="鼓西街道", first_seen=T0 + minutes(1)), T0)
    alerts = client.get("/alerts", headers=bearer("张三")).json()
    assert [a["device_id"] for a in alerts] == ["b", "a"]
    only = client.get("/alerts", params={"severity": "critical", "condition": "firing"}, headers=bearer("张三"))
    assert [a["device_id"] for a in only.json()] == ["a"]
    assert client.get("/alerts", params={"street": "鼓西街道"}, headers=bearer("张三")).json()[0]["device_id"] == "b"
    naive = client.get("/alerts", params={"since": "2026-05-06T09:00:00"}, headers=bearer("张三"))
    assert naive.status_code == 422
    detail = client.get(f"/alerts/{alerts[1]['alert_id']}", headers=bearer("张三")).json()
    assert detail["alert"]["device_id"] == "a" and [h["action"] for h in detail["history"]] == ["fired"]
    assert client.get("/alerts/999", headers=bearer("张三")).status_code == 404


def test_ack_assign_close_are_recorded_with_the_operator(client: TestClient, store: WorkflowStore) -> None:
    alert, _ = store.record_engine_event(payload(severity="critical"), T0)
    acked = client.post(f"/alerts/{alert.id}/ack", json={"note": "马上到"}, headers=bearer("张三")).json()
    assert (acked["status"], acked["acked_by"], acked["version"]) == ("acknowledged", "张三", 2)
    again = client.post(f"/alerts/{alert.id}/ack", json={}, headers=bearer("李四"))
    assert again.status_code == 409 and "already acknowledged by 张三" in again.json()["detail"]
    stale = client.post(f"/alerts/{alert.id}/assign", json={"assignee": "环卫班组", "kind": "team", "version": 1},
                        headers=bearer("李四"))
    assert stale.status_code == 409 and "changed since you read it" in stale.json()["detail"]
    assigned = client.post(f"/alerts/{alert.id}/assign", json={"assignee": "环卫班组", "kind": "team", "version": 2},
                           headers=bearer("李四")).json()
    assert (assigned["assignee"], assigned["assigned_by"]) == ("环卫班组", "李四")
    refused = client.post(f"/alerts/{alert.id}/close", json={}, headers=bearer("李四"))
    assert refused.status_code == 409 and "still firing" in refused.json()["detail"]
    closed = client.post(f"/alerts/{alert.id}/close", json={"note": "现场确认误报"}, headers=bearer("李四")).json()
    assert closed["status"] == "closed" and closed["closed_by"] == "李四"
    history = client.get(f"/alerts/{alert.id}", headers=bearer("张三")).json()["history"]
    assert [(h["action"], h["actor"]) for h in history] == [
        ("fired", "system"), ("acknowledged", "张三"), ("assigned", "李四"), ("closed", "李四")]


def test_silences_crud(client: TestClient) -> None:
    body = {"street": "鼓东街道", "rule_id": "parking-tight", "starts_at": T0.isoformat(),
            "ends_at": (T0 + timedelta(hours=2)).isoformat(), "reason": "道路施工，停车场封闭"}
    created = client.post("/silences", json=body, headers=bearer("张三"))
    assert created.status_code == 201
    silence = created.json()
    assert silence["created_by"] == "张三" and silence["scope"]["street"] == "鼓东街道"
    assert client.post("/silences", json={**body, "street": None, "rule_id": None},
                       headers=bearer("张三")).status_code == 422
    assert client.post("/silences", json={**body, "ends_at": body["starts_at"]},
                       headers=bearer("张三")).status_code == 409
    moved = client.patch(f"/silences/{silence['id']}", json={"ends_at": (T0 + timedelta(hours=3)).isoformat()},
                         headers=bearer("李四")).json()
    assert moved["updated_by"] == "李四" and moved["ends_at"].startswith("2026-05-06T04:00")
    assert [s["id"] for s in client.get("/silences", headers=bearer("张三")).json()] == [silence["id"]]
    cancelled = client.delete(f"/silences/{silence['id']}", headers=bearer("李四")).json()
    assert cancelled["cancelled_by"] == "李四"
    assert client.get("/silences", headers=bearer("张三")).json() == []
    assert client.get("/silences/999", headers=bearer("张三")).status_code == 404


def test_work_order_callback_is_signed_and_done_closes(client: TestClient, store: WorkflowStore) -> None:
    alert, _ = store.record_engine_event(payload(rule="waste-bin-overflow", domain="waste"), T0)
    order = store.work_orders.create(alert.id, T0)
    body = json.dumps({"work_order_id": order.id, "status": "done", "note": "已清运",
                       "photo_url": "https://img.example/wo.jpg"}).encode()
    unsigned = client.post("/work-orders/callback", content=body)
    assert unsigned.status_code == 401
    old = signed_headers(DISPATCH_SECRET, body, now_s=T0.timestamp())
    assert client.post("/work-orders/callback", content=body, headers=old).status_code == 401
    done = client.post("/work-orders/callback", content=body, headers=signed_headers(DISPATCH_SECRET, body))
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["close_note"]) == ("closed", "已清运")
    detail = client.get(f"/alerts/{alert.id}", headers=bearer("张三")).json()
    assert detail["work_order"]["photo_url"] == "https://img.example/wo.jpg"
    assert detail["history"][-1]["actor"] == f"workorder:{order.id}"


def test_openapi_describes_every_route(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {"/alerts", "/alerts/{ref}", "/alerts/{ref}/ack", "/alerts/{ref}/assign", "/alerts/{ref}/close",
            "/silences", "/silences/{silence_id}", "/work-orders/callback"} <= set(spec["paths"])
