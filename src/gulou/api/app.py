"""The API application: list and read alerts, act on them, manage silences, take work-order callbacks."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError
from sqlalchemy.exc import DataError
from starlette.routing import Match

from gulou import __version__
from gulou.api.auth import Operators
from gulou.api.schemas import (
    AckIn,
    AlertDetail,
    AssignIn,
    CloseIn,
    Problem,
    SilenceIn,
    SilencePatch,
    Text,
    WorkOrderCallback,
)
from gulou.workflow import transitions
from gulou.workflow.model import SEVERITIES, AlertRecord, Conflict, NotFound, Silence, WorkflowError
from gulou.workflow.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, SignatureError, verify
from gulou.workflow.store import AlertFilter, WorkflowStore

Clock = Callable[[], datetime]
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "The body is not JSON"},
    401: {"model": Problem, "description": "No or unknown bearer token"},
    404: {"model": Problem, "description": "No such record"},
    409: {"model": Problem, "description": "Someone else changed it first, or the state does not allow it"},
}
Ref = Annotated[str, Path(min_length=1, max_length=300, pattern=r"^[^\x00/]+$",
                          description="The alert's number, or its engine alert_id")]
# Accepting bare numbers as Unix times would let typos through: an ISO date and time with its offset only.
ISO_WITH_OFFSET = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|z|[+-]\d{2}:\d{2})$"
SilenceId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def invalid(loc: tuple[str, ...], message: str) -> RequestValidationError:
    """A 422 answer shaped like FastAPI's own validation errors (as the OpenAPI spec says)."""
    return RequestValidationError([{"loc": loc, "msg": message, "type": "value_error"}])


def create_app(store: WorkflowStore, operators: Operators, *, dispatch_secret: str | None = None,
               signature_max_age_s: float = 300.0, open_reads: bool = False,
               clock: Clock = lambda: datetime.now(UTC)) -> FastAPI:
    """The FastAPI app over a workflow store; every write records the operator its token belongs to."""
    app = FastAPI(title="Gulou alert workflow", version=__version__,
                  description="Alerts of the Gulou pipeline: acknowledge, assign, close (销号), silence, dispatch.")
    bearer = HTTPBearer(auto_error=False)

    def operator(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> str:
        name = operators.who(credentials.credentials) if credentials is not None else None
        if name is None:
            raise HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})
        return name

    def reader(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> str | None:
        return None if open_reads else operator(credentials)

    Operator = Annotated[str, Depends(operator)]
    Reader = Annotated[str | None, Depends(reader)]

    @app.middleware("http")
    async def allow_header(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        # Starlette names only the first route of a path in Allow; a path may have several (GET and POST).
        response = await call_next(request)
        if response.status_code == 405:
            methods = {m for r in app.routes if isinstance(r, APIRoute) and r.matches(request.scope)[0] != Match.NONE
                       for m in r.methods or ()}
            response.headers["Allow"] = ", ".join(sorted(methods))
        return response

    def single(request: Request, *names: str) -> None:
        # FastAPI would quietly take the last of a repeated single-valued parameter.
        for name in names:
            if len(request.query_params.getlist(name)) > 1:
                raise invalid(("query", name), "give this parameter at most once")

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(Conflict)
    async def _conflict(_: Request, exc: Conflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(WorkflowError)
    async def _refused(_: Request, exc: WorkflowError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(DataError)
    async def _bad_data(_: Request, exc: DataError) -> JSONResponse:
        problem = {"loc": ["body"], "msg": f"the database refused a value: {exc.orig}", "type": "value_error"}
        return JSONResponse({"detail": [problem]}, status_code=422)

    @app.get("/healthz", tags=["service"])
    def healthz() -> dict[str, str]:
        """Liveness: the database answers."""
        store.alerts(limit=1)
        return {"status": "ok"}

    @app.get("/alerts", tags=["alerts"], responses=ERRORS)
    def list_alerts(
        request: Request,
        _: Reader,
        status: Annotated[list[str] | None, Query(description="new, escalated, acknowledged, assigned, closed")]
        = None,
        condition: Annotated[str | None, Query(pattern="^(firing|resolved)$")] = None,
        severity: Annotated[list[str] | None, Query(description=", ".join(SEVERITIES))] = None,
        domain: Annotated[Text | None, Query()] = None,
        street: Annotated[Text | None, Query()] = None,
        device_id: Annotated[Text | None, Query()] = None,
        rule_id: Annotated[Text | None, Query()] = None,
        since: Annotated[str | None, Query(pattern=ISO_WITH_OFFSET, json_schema_extra={"format": "date-time"},
                                           description="last seen at or after, with offset")] = None,
        open_only: Annotated[bool, Query(description="leave out closed alerts")] = False,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> list[AlertRecord]:
        """Alerts, newest first, filtered."""
        single(request, "condition", "domain", "street", "device_id", "rule_id", "since", "open_only", "limit",
               "offset")
        try:
            since_at = datetime.fromisoformat(since) if since else None
        except ValueError:
            raise invalid(("query", "since"), f"{since!r} is not a date and time") from None
        flt = AlertFilter(status=tuple(status or ()), condition=condition, severity=tuple(severity or ()),
                          domain=domain, street=street, device_id=device_id, rule_id=rule_id, since=since_at,
                          open_only=open_only)
        return store.alerts(flt, limit=limit, offset=offset)

    @app.get("/alerts/{ref}", tags=["alerts"], responses=ERRORS)
    def get_alert(ref: Ref, _: Reader) -> AlertDetail:
        """One alert with its full history and its work order."""
        alert = store.get(ref)
        order = store.work_orders.get(alert.work_order_id) if alert.work_order_id else None
        return AlertDetail(alert=alert, history=store.history(alert.id), work_order=order)

    @app.post("/alerts/{ref}/ack", tags=["alerts"], responses=ERRORS)
    def ack(ref: Ref, body: AckIn, who: Operator) -> AlertRecord:
        """Acknowledge (stops escalation). A second acknowledgement is a conflict naming the first."""
        now = clock()
        return store.act(ref, lambda a: transitions.acknowledge(a, who, body.note, now), body.version)

    @app.post("/alerts/{ref}/assign", tags=["alerts"], responses=ERRORS)
    def assign(ref: Ref, body: AssignIn, who: Operator) -> AlertRecord:
        """Assign to a person or team (stops escalation)."""
        now = clock()
        return store.act(ref, lambda a: transitions.assign(a, who, body.assignee, body.kind, body.note, now),
                         body.version)

    @app.post("/alerts/{ref}/close", tags=["alerts"], responses=ERRORS)
    def close(ref: Ref, body: CloseIn, who: Operator) -> AlertRecord:
        """销号: close a resolved alert, or a firing one with a note saying why."""
        now = clock()
        return store.act(ref, lambda a: transitions.close(a, who, body.note, now), body.version)

    @app.get("/silences", tags=["silences"], responses=ERRORS)
    def list_silences(request: Request, _: Reader,
                      active: Annotated[bool, Query(description="only those in force now")] = False,
                      include_cancelled: bool = False) -> list[Silence]:
        """Silences, newest first."""
        single(request, "active", "include_cancelled")
        return store.silences.find(active_at=clock() if active else None, include_cancelled=include_cancelled)

    @app.post("/silences", tags=["silences"], status_code=201, responses=ERRORS)
    def create_silence(body: SilenceIn, who: Operator) -> Silence:
        """Silence a device, site, street, rule or domain for a while (alerts recorded, not notified)."""
        try:
            scope = body.scope()
        except ValueError as exc:
            raise invalid(("body",), str(exc)) from None
        return store.silences.create(scope, body.starts_at, body.ends_at, body.reason, who, clock())

    @app.get("/silences/{silence_id}", tags=["silences"], responses=ERRORS)
    def get_silence(silence_id: SilenceId, _: Reader) -> Silence:
        """One silence."""
        return store.silences.get(silence_id)

    @app.patch("/silences/{silence_id}", tags=["silences"], responses=ERRORS)
    def update_silence(silence_id: SilenceId, body: SilencePatch, who: Operator) -> Silence:
        """Move a silence's window or change its reason."""
        return store.silences.update(silence_id, who, clock(), starts_at=body.starts_at, ends_at=body.ends_at,
                                     reason=body.reason)

    @app.delete("/silences/{silence_id}", tags=["silences"], responses=ERRORS)
    def cancel_silence(silence_id: SilenceId, who: Operator) -> Silence:
        """End a silence now; it stays on record as cancelled."""
        return store.silences.cancel(silence_id, who, clock())

    @app.post("/work-orders/callback", tags=["work orders"],
              responses={**ERRORS, 503: {"model": Problem, "description": "Dispatch is not configured"}})
    async def work_order_callback(
        request: Request,
        x_gulou_timestamp: Annotated[str | None, Header(alias=TIMESTAMP_HEADER)] = None,
        x_gulou_signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER)] = None,
    ) -> AlertRecord:
        """Progress from the dispatch system (signed like our requests): accepted, on_site, done (closes)."""
        if dispatch_secret is None:
            raise HTTPException(503, "work-order dispatch is not configured")
        raw = await request.body()
        try:
            verify(dispatch_secret, raw, x_gulou_timestamp, x_gulou_signature, max_age_s=signature_max_age_s)
        except SignatureError as exc:
            raise HTTPException(401, str(exc)) from None
        try:
            report = WorkOrderCallback.model_validate_json(raw)
        except ValidationError as exc:
            raise RequestValidationError(exc.errors(include_url=False, include_context=False)) from None
        return await asyncio.to_thread(store.work_order_progress, report.work_order_id, report.status,
                                       report.note, report.photo_url, clock())

    return app
