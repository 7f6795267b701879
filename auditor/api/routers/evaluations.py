"""Evaluations: upload (a JSON bundle, a JSONL stream of any size, or a zip of Parquet tables),
list, get, delete."""

from __future__ import annotations

import tempfile
from typing import Annotated, Any, Final

import anyio
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from auditor.api.deps import (
    EvaluationId,
    RawBody,
    SettingsDep,
    StoreDep,
    TenantDep,
    current_tenant,
    strict_json,
)
from auditor.api.errors import BAD_BODY, ERROR_RESPONSES, TOO_LARGE
from auditor.api.schemas import ErrorBody, EvaluationOut, EvaluationPage
from auditor.schemas.bundle import Bundle, Normalization
from auditor.services import evaluations
from auditor.services.evaluations import StreamImporter

__all__ = ["FEED_BYTES", "router", "upload_router"]

PREFIX: Final = "/v1/evaluations"
FEED_BYTES: Final = 1024 * 1024
"""The streamed body is handed to the importer in pieces of about this size."""

_CREATED: dict[int | str, dict[str, Any]] = {
    201: {
        "description": "Stored; `Location` names the new evaluation.",
        "headers": {
            "Location": {"description": "URL of the evaluation.", "schema": {"type": "string"}}
        },
    }
}

router = APIRouter(
    prefix=PREFIX,
    tags=["evaluations"],
    dependencies=[Depends(current_tenant)],
    responses=ERROR_RESPONSES,
)
upload_router = APIRouter(
    prefix=PREFIX,
    tags=["evaluations"],
    dependencies=[Depends(current_tenant)],
    responses=ERROR_RESPONSES,
)
"""The streaming upload has its own body limit (``max_stream_bytes``): `main` includes it so."""

NameQuery = Annotated[str | None, Query(max_length=200, description="A label for the evaluation.")]
NormalizeQuery = Annotated[
    Normalization,
    Query(
        description="How `probs` are read: `none` (probabilities), `sum` (non-negative "
        "scores, divided by their total) or `softmax` (logits or log-probabilities)."
    ),
]


def _created(response: Response, evaluation: EvaluationOut) -> EvaluationOut:
    response.headers["Location"] = f"{PREFIX}/{evaluation.id}"
    return evaluation


@router.post(
    "",
    status_code=201,
    response_model=EvaluationOut,
    responses={**_CREATED, **BAD_BODY, **TOO_LARGE},
    summary="Store an evaluation bundle (JSON)",
)
def create_evaluation(
    bundle: Bundle,
    raw: RawBody,
    response: Response,
    store: StoreDep,
    tenant: TenantDep,
    name: NameQuery = None,
    normalize: NormalizeQuery = "none",
) -> EvaluationOut:
    """Validate a whole bundle document (every problem is reported) and store it."""
    info = evaluations.store_bundle(
        store, strict_json(raw, Bundle), tenant=tenant, name=name, normalize=normalize
    )
    return _created(response, EvaluationOut.of(info))


_JSONL_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "JSONL: one record per line, each with `kind` (header, item, model, "
        "output, verdict, comparison or label) and the fields of that record in the bundle "
        "schema. Items and models must come before the records that name them.",
        "content": {"application/x-ndjson": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@upload_router.post(
    ":stream",
    status_code=201,
    response_model=EvaluationOut,
    responses={**_CREATED, **TOO_LARGE},
    openapi_extra=_JSONL_BODY,
    summary="Store an evaluation streamed as JSONL (any size)",
)
async def stream_evaluation(
    request: Request,
    response: Response,
    store: StoreDep,
    tenant: TenantDep,
    name: NameQuery = None,
    normalize: NormalizeQuery = "none",
) -> EvaluationOut:
    """Read the body as it arrives, validate each record, store in chunks in one transaction.

    Nothing is visible until the whole upload is valid and committed; on any problem the
    transaction is rolled back and the answer is 422 listing every problem with its line.
    """
    importer = StreamImporter(store, tenant=tenant, name=name, normalize=normalize)
    piece = bytearray()
    try:
        async for chunk in request.stream():
            piece += chunk
            if len(piece) >= FEED_BYTES:
                await run_in_threadpool(importer.feed, bytes(piece))
                piece.clear()
        if piece:
            await run_in_threadpool(importer.feed, bytes(piece))
        info = await run_in_threadpool(importer.finish)
    except BaseException:
        with anyio.CancelScope(shield=True):  # roll back even if the request was cancelled
            await run_in_threadpool(importer.abort)
        raise
    return _created(response, EvaluationOut.of(info))


_PARQUET_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A zip archive of a Parquet bundle's tables: `items.parquet`, "
        "`models.parquet`, `outputs.parquet` and, when present, `verdicts.parquet`, "
        "`comparisons.parquet`, `labels.parquet` (at the top or in one directory, as zipping an "
        "`auditor convert ... eval.parquet` directory makes it). Unpacked, at most the "
        "streaming limit.",
        "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@upload_router.post(
    ":parquet",
    status_code=201,
    response_model=EvaluationOut,
    responses={**_CREATED, **TOO_LARGE},
    openapi_extra=_PARQUET_BODY,
    summary="Store an evaluation sent as a zip of Parquet tables",
)
async def upload_parquet(
    request: Request,
    response: Response,
    store: StoreDep,
    tenant: TenantDep,
    settings: SettingsDep,
    name: NameQuery = None,
    normalize: NormalizeQuery = "none",
) -> EvaluationOut:
    """Spool the archive to a temporary file as it arrives, then validate its tables by the
    rules of every bundle (422 listing every problem, by table and row) and store it whole."""
    limit = settings.api.max_stream_bytes
    with tempfile.SpooledTemporaryFile(max_size=FEED_BYTES * 8) as spooled:
        async for chunk in request.stream():
            await run_in_threadpool(spooled.write, chunk)
        spooled.seek(0)
        info = await run_in_threadpool(
            lambda: evaluations.store_parquet_archive(
                store,
                spooled,
                tenant=tenant,
                name=name,
                normalize=normalize,
                max_unpacked_bytes=limit,
            )
        )
    return _created(response, EvaluationOut.of(info))


@router.get("", response_model=EvaluationPage, summary="List evaluations")
def list_evaluations(
    store: StoreDep,
    tenant: TenantDep,
    limit: Annotated[int, Query(ge=1, le=200, description="Page size.")] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1, description="Evaluations to skip.")] = 0,
) -> EvaluationPage:
    """The tenant's evaluations, newest first."""
    rows = store.list_evaluations(tenant=tenant, limit=limit + 1, offset=offset)
    more = len(rows) > limit
    return EvaluationPage(
        items=[EvaluationOut.of(row) for row in rows[:limit]],
        limit=limit,
        offset=offset,
        next=f"{PREFIX}?limit={limit}&offset={offset + limit}" if more else None,
    )


@router.get("/{evaluation_id}", response_model=EvaluationOut, summary="Get an evaluation")
def get_evaluation(
    evaluation_id: EvaluationId, store: StoreDep, tenant: TenantDep
) -> EvaluationOut:
    try:
        return EvaluationOut.of(evaluations.visible_evaluation(store, evaluation_id, tenant=tenant))
    except evaluations.EvaluationNotFound:
        raise HTTPException(404, "evaluation not found") from None


@router.delete(
    "/{evaluation_id}",
    status_code=204,
    response_class=Response,
    responses={409: {"model": ErrorBody, "description": "An active audit reads it."}},
    summary="Delete an evaluation",
)
def delete_evaluation(evaluation_id: EvaluationId, store: StoreDep, tenant: TenantDep) -> Response:
    """Delete an evaluation and its records (not while a queued or running audit reads it)."""
    try:
        evaluations.delete_evaluation(store, evaluation_id, tenant=tenant)
    except evaluations.EvaluationNotFound:
        raise HTTPException(404, "evaluation not found") from None
    except evaluations.EvaluationInUse as in_use:
        raise HTTPException(409, str(in_use)) from None
    return Response(status_code=204)
