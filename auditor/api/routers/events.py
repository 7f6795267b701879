"""The audit trail of a tenant (paginated), the report signing key, signed report manifests."""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field

from auditor.api.deps import AuditId, RedactorDep, StoreDep, TenantDep, current_tenant
from auditor.api.errors import ERROR_RESPONSES
from auditor.api.schemas import ErrorBody
from auditor.schemas.result import AffinityReport
from auditor.services import trail
from auditor.services.governance import GovernanceSettings, sign_report_files
from auditor.services.signing import (
    PublicKeyInfo,
    SignedManifest,
    load_or_create_key,
    public_key_info,
)
from auditor.services.trail import EventRecord

__all__ = ["PREFIX", "public_router", "router"]

PREFIX: Final = "/v1/events"

router = APIRouter(
    tags=["audit trail"], dependencies=[Depends(current_tenant)], responses=ERROR_RESPONSES
)
public_router = APIRouter(tags=["audit trail"])
"""Needs no key: a public key is for anyone verifying a report."""


class EventPage(BaseModel):
    """One page of a tenant's audit trail, oldest first."""

    items: list[EventRecord] = Field(description="Entries on this page.")
    next: str | None = Field(
        description="URL of the next page (entries after the last one here); null at the end."
    )


@router.get(PREFIX, response_model=EventPage, summary="List the tenant's audit trail")
def list_events(
    store: StoreDep,
    tenant: TenantDep,
    after: Annotated[
        int, Query(ge=0, le=2**31 - 1, description="Entries after this sequence number.")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=500, description="Page size.")] = 100,
    action: Annotated[
        str | None, Query(max_length=64, description="Only this action, e.g. audit.finished.")
    ] = None,
    object_id: Annotated[
        str | None, Query(max_length=200, description="Only entries about this object.")
    ] = None,
) -> EventPage:
    """Who did what, when, to which object (with the object's SHA-256 and the chain hashes).
    Other tenants' entries are not shown; their hashes still link the chain, which
    `auditor trail verify` checks as a whole."""
    events = trail.list_events(
        store, tenant=tenant, limit=limit + 1, after=after, action=action, object_id=object_id
    )
    more = len(events) > limit
    events = events[:limit]
    query = f"after={events[-1].seq}&limit={limit}" if more and events else None
    if query is not None:
        query += (f"&action={action}" if action else "") + (
            f"&object_id={object_id}" if object_id else ""
        )
    return EventPage(items=events, next=f"{PREFIX}?{query}" if query else None)


@public_router.get("/signing-key", response_model=PublicKeyInfo, summary="Report signing key")
def signing_key(store: StoreDep) -> PublicKeyInfo:
    """The public half of the Ed25519 key that signs report manifests: pin it when verifying
    a report offline (``auditor verify REPORT --public-key FILE``)."""
    key = load_or_create_key(store, GovernanceSettings().signing_key_path)
    return public_key_info(key)


@router.get(
    "/v1/audits/{audit_id}/report/manifest",
    response_model=SignedManifest,
    responses={409: {"model": ErrorBody, "description": "The audit has no result."}},
    summary="Signed manifest of a finished audit's report",
)
def report_manifest(
    audit_id: AuditId,
    store: StoreDep,
    tenant: TenantDep,
    redactor: RedactorDep,
    fmt: Annotated[
        Literal["html", "md", "json"], Query(alias="format", description="Report format.")
    ] = "html",
) -> Any:
    """The signed manifest of the report ``GET /v1/audits/{id}/report?format=...`` returns
    (HTML, Markdown and JSON render byte for byte the same each time; PDF does not). Save the
    report as ``audit-<id>.<format>`` and this as ``audit-<id>.manifest.json`` beside it, then
    ``auditor verify audit-<id>.<format>``."""
    import reports

    audit = store.get_audit(audit_id, tenant=tenant)
    if audit is None:
        raise HTTPException(404, "audit not found")
    if audit.status != "succeeded":
        raise HTTPException(409, f"audit is {audit.status}: it has no result")
    document = store.get_result(audit_id, tenant=tenant)
    if document is None:
        raise HTTPException(404, "no result stored for this audit")
    redacted: dict[str, Any] = redactor.document(document)
    report = AffinityReport.model_validate(redacted)
    data = reports.render(report, fmt)
    return sign_report_files(
        store,
        audit_id,
        {f"audit-{audit_id}.{fmt}": data},
        report=report,
        tenant=tenant,
        key_path=GovernanceSettings().signing_key_path,
    )
