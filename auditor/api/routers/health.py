"""Operations endpoints (no API key): liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from auditor.api.deps import DispatcherDep, StoreDep
from auditor.api.metrics import HttpMetrics, scrape
from auditor.api.schemas import CheckOut, ErrorBody, Health, Readiness

__all__ = ["router"]

router = APIRouter(
    tags=["operations"],
    responses={422: {"model": ErrorBody, "description": "Unknown query parameters."}},
)


@router.get("/healthz", response_model=Health, summary="Liveness")
def healthz() -> Health:
    """The process answers."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "The database or broker is down."}},
    summary="Readiness",
)
def readyz(store: StoreDep, dispatcher: DispatcherDep) -> JSONResponse:
    """The database and the broker answer (503 and which one failed if not)."""
    checks: dict[str, CheckOut] = {}
    try:
        store.ping()
        checks["database"] = CheckOut(ok=True)
    except Exception as error:  # only the kind of error: its text may hold the URL
        checks["database"] = CheckOut(ok=False, error=type(error).__name__)
    try:
        dispatcher.ping()
        checks["broker"] = CheckOut(ok=True)
    except Exception as error:
        checks["broker"] = CheckOut(ok=False, error=type(error).__name__)
    ready = all(check.ok for check in checks.values())
    body = Readiness(status="ready" if ready else "not ready", checks=checks)
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if ready else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"description": "Prometheus text format.", "content": {"text/plain": {}}}},
    summary="Prometheus metrics",
)
def metrics(request: Request, store: StoreDep) -> Response:
    """Requests, audits by status, model calls, failures and cost."""
    http: HttpMetrics = request.app.state.http_metrics
    return Response(scrape(http, store), media_type=CONTENT_TYPE_LATEST)
