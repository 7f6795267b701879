"""Audits: start (202), list, get, cancel; the finished audit's result and rendered report."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Response

from auditor.api.deps import (
    AuditId,
    DispatcherDep,
    RawBody,
    RedactorDep,
    SettingsDep,
    StoreDep,
    TenantDep,
    current_tenant,
    strict_json,
)
from auditor.api.errors import BAD_BODY, ERROR_RESPONSES, TOO_LARGE
from auditor.api.redaction import Redactor
from auditor.api.schemas import AuditOut, AuditPage, ErrorBody
from auditor.schemas.bundle import Problem
from auditor.schemas.result import AffinityReport
from auditor.schemas.spec import AuditSpec, SpecError
from auditor.services.audits import (
    AuditNotActive,
    AuditNotFinished,
    AuditNotFound,
    IdempotencyKeyReused,
    StoredAudit,
    admission_problems,
    audit_status,
    finished_result,
    needs_start,
    submit_audit,
    visible_audit,
)
from auditor.services.audits import cancel_audit as cancel_stored_audit
from auditor.storage.store import Store

__all__ = ["REPORT_MEDIA_TYPES", "router"]

log = logging.getLogger(__name__)

PREFIX: Final = "/v1/audits"
REPORT_MEDIA_TYPES: Final = {
    "html": "text/html; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
    "json": "application/json",
    "pdf": "application/pdf",
}
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "The audit is not in a state for this."}
}

router = APIRouter(
    prefix=PREFIX,
    tags=["audits"],
    dependencies=[Depends(current_tenant)],
    responses=ERROR_RESPONSES,
)

AuditState = Literal["queued", "running", "succeeded", "failed", "cancelled"]


def _out(store: Store, audit: StoredAudit, redactor: Redactor) -> AuditOut:
    document = AuditOut.of(audit_status(store, audit), audit.spec).model_dump(mode="json")
    return AuditOut.model_validate(redactor.document(document))


def _visible(store: Store, tenant: str, audit_id: str) -> StoredAudit:
    try:
        return visible_audit(store, audit_id, tenant=tenant)
    except AuditNotFound as error:
        raise HTTPException(404, str(error)) from None


@router.post(
    "",
    status_code=202,
    response_model=AuditOut,
    responses={
        202: {
            "description": "Accepted: the audit is queued (or, with a reused Idempotency-Key, "
            "the audit that key created). `Location` names it.",
            "headers": {
                "Location": {"description": "URL of the audit.", "schema": {"type": "string"}}
            },
        },
        **BAD_BODY,
        **TOO_LARGE,
    },
    summary="Start an audit",
)
def create_audit(
    spec: AuditSpec,
    raw: RawBody,
    response: Response,
    store: StoreDep,
    tenant: TenantDep,
    settings: SettingsDep,
    dispatcher: DispatcherDep,
    redactor: RedactorDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=200,
            description="Retrying a create with the same key and spec returns the same audit.",
        ),
    ] = None,
) -> AuditOut:
    """Queue an audit of a stored evaluation (``evaluation_id``) or of a simulation."""
    spec = strict_json(raw, AuditSpec)
    problems = admission_problems(
        store, spec, tenant=tenant, allowed_api_bases=settings.api.allowed_api_bases
    )
    if problems:
        raise SpecError(problems)
    try:
        audit, created = submit_audit(store, spec, tenant=tenant, idempotency_key=idempotency_key)
    except KeyError:  # the evaluation was deleted a moment ago
        raise SpecError(
            [Problem("evaluation_id", f"no evaluation {spec.evaluation_id!r}")]
        ) from None
    except IdempotencyKeyReused as reused:
        raise SpecError([Problem("header.idempotency-key", str(reused))]) from None
    if needs_start(audit, created):
        try:
            dispatcher.start_audit(audit.id)
        except Exception as error:  # the audit is stored: beat's sweep starts it later
            log.warning("could not send audit %s to the broker: %s", audit.id, type(error).__name__)
    response.headers["Location"] = f"{PREFIX}/{audit.id}"
    return _out(store, audit, redactor)


@router.get("", response_model=AuditPage, summary="List audits")
def list_audits(
    store: StoreDep,
    tenant: TenantDep,
    redactor: RedactorDep,
    status: Annotated[AuditState | None, Query(description="Only audits in this status.")] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="Page size.")] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1, description="Audits to skip.")] = 0,
) -> AuditPage:
    """The tenant's audits, newest first."""
    rows = store.list_audits(tenant=tenant, limit=limit + 1, offset=offset, status=status)
    more = len(rows) > limit
    query = f"limit={limit}&offset={offset + limit}" + (f"&status={status}" if status else "")
    return AuditPage(
        items=[_out(store, row, redactor) for row in rows[:limit]],
        limit=limit,
        offset=offset,
        next=f"{PREFIX}?{query}" if more else None,
    )


@router.get("/{audit_id}", response_model=AuditOut, summary="Get an audit's status")
def get_audit(
    audit_id: AuditId, store: StoreDep, tenant: TenantDep, redactor: RedactorDep
) -> AuditOut:
    """Status, progress per kind of call, cost so far and failure reasons."""
    return _out(store, _visible(store, tenant, audit_id), redactor)


@router.post(
    "/{audit_id}/cancel",
    response_model=AuditOut,
    responses=_CONFLICT,
    summary="Cancel an audit",
)
def cancel_audit(
    audit_id: AuditId, store: StoreDep, tenant: TenantDep, redactor: RedactorDep
) -> AuditOut:
    """Stop a queued or running audit (workers make no more of its calls); 409 if it has
    already finished."""
    try:
        audit = cancel_stored_audit(store, audit_id, tenant=tenant)
    except AuditNotFound as error:
        raise HTTPException(404, str(error)) from None
    except AuditNotActive as error:
        raise HTTPException(409, str(error)) from None
    return _out(store, audit, redactor)


def _result(store: Store, tenant: str, audit_id: str, redactor: Redactor) -> dict[str, Any]:
    try:
        _, document = finished_result(store, audit_id, tenant=tenant)
    except AuditNotFound as error:
        raise HTTPException(404, str(error)) from None
    except AuditNotFinished as error:
        raise HTTPException(409, str(error)) from None
    redacted: dict[str, Any] = redactor.document(document)
    return redacted


@router.get(
    "/{audit_id}/result",
    response_model=AffinityReport,
    responses=_CONFLICT,
    summary="Get a finished audit's analysis",
)
def get_result(
    audit_id: AuditId, store: StoreDep, tenant: TenantDep, redactor: RedactorDep
) -> AffinityReport:
    """The versioned analysis result (what every report is rendered from)."""
    return AffinityReport.model_validate(_result(store, tenant, audit_id, redactor))


@router.get(
    "/{audit_id}/report",
    response_class=Response,
    responses={
        200: {
            "description": "The rendered report.",
            "content": {media: {} for media in REPORT_MEDIA_TYPES.values()},
        },
        **_CONFLICT,
    },
    summary="Get a finished audit's report",
)
def get_report(
    audit_id: AuditId,
    store: StoreDep,
    tenant: TenantDep,
    redactor: RedactorDep,
    fmt: Annotated[
        Literal["html", "md", "json", "pdf"], Query(alias="format", description="Report format.")
    ] = "html",
) -> Response:
    """The report rendered from the stored result (nothing is re-run)."""
    import reports  # matplotlib and WeasyPrint load only when a report is asked for

    report = AffinityReport.model_validate(_result(store, tenant, audit_id, redactor))
    return Response(
        reports.render(report, fmt),
        media_type=REPORT_MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'inline; filename="audit-{audit_id}.{fmt}"'},
    )
