"""The REST API application: `create_app` assembles settings, storage, routers and middleware.

Run it with ``auditor serve`` (uvicorn with ``create_app`` as a factory).
"""

from __future__ import annotations

import os

from fastapi import Depends, FastAPI

from auditor.api.actor import ActorMiddleware
from auditor.api.deps import known_query_only
from auditor.api.dispatch import CeleryDispatcher, Dispatcher
from auditor.api.errors import install_error_handlers
from auditor.api.methods import AllowedMethodsMiddleware
from auditor.api.metrics import HttpMetrics, MetricsMiddleware
from auditor.api.redaction import RedactionMiddleware, Redactor
from auditor.api.routers import audits, evaluations, events, health, schedules
from auditor.settings import Settings, get_settings
from auditor.storage.store import Store

__all__ = ["API_VERSION", "create_app"]

API_VERSION = "1.0.0"


def create_app(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    dispatcher: Dispatcher | None = None,
) -> FastAPI:
    """The application for ``settings`` (default: read from the environment).

    The database schema is brought up to date here, before the first request. ``store`` and
    ``dispatcher`` default to the configured database and broker.
    """
    settings = settings or get_settings()
    store = store or Store(settings.database.url)
    store.migrate()
    redactor = Redactor.from_environment(
        os.environ,
        urls=(settings.database.url, settings.worker.broker_url, settings.worker.result_backend),
    )
    http_metrics = HttpMetrics()

    app = FastAPI(
        title="Judge Auditor",
        version=API_VERSION,
        summary="Audits LLM judges for affinity bias: store evaluations, run audits, "
        "fetch results and reports.",
        max_body_size=settings.api.max_body_bytes,
        dependencies=[Depends(known_query_only)],
    )
    app.state.settings = settings
    app.state.store = store
    app.state.dispatcher = dispatcher or CeleryDispatcher(
        settings.worker.broker_url, visibility_timeout=settings.worker.visibility_timeout
    )
    app.state.redactor = redactor
    app.state.http_metrics = http_metrics

    app.include_router(health.router)
    app.include_router(evaluations.upload_router, max_body_size=settings.api.max_stream_bytes)
    app.include_router(evaluations.router)
    app.include_router(audits.router)
    app.include_router(schedules.router)
    app.include_router(events.router)
    app.include_router(events.public_router)
    install_error_handlers(app)
    # Last added runs first: metrics see every response, redaction sees every body.
    app.add_middleware(AllowedMethodsMiddleware, routes=app.router.routes)
    app.add_middleware(RedactionMiddleware, redactor=redactor)
    app.add_middleware(MetricsMiddleware, metrics=http_metrics)
    app.add_middleware(ActorMiddleware)  # binds the audit trail's actor: the request's key id
    return app
