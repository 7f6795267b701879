"""The shapes the REST API sends and receives (request bodies reuse `Bundle` and `AuditSpec`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field

from auditor.services.audits import AuditStatus
from auditor.storage.store import EvaluationInfo

__all__ = [
    "AuditOut",
    "AuditPage",
    "CheckOut",
    "ErrorBody",
    "EvaluationOut",
    "EvaluationPage",
    "FailureOut",
    "Health",
    "ProblemOut",
    "Readiness",
    "StageProgressOut",
]

AuditState = Literal["queued", "running", "succeeded", "failed", "cancelled"]


def _as_utc(value: datetime) -> datetime:
    # Storage keeps naive UTC; the API says so (RFC 3339 date-times carry an offset).
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


class ProblemOut(BaseModel):
    """One thing wrong with a request, located by its path."""

    path: str = Field(
        description="Where: a field path such as `items[3].gold`, a JSONL record such as "
        "`line 12.probs`, or `query.limit` / `header.idempotency-key`."
    )
    message: str = Field(description="What is wrong, with the value received where useful.")


class ErrorBody(BaseModel):
    """Every error response."""

    detail: str = Field(description="What went wrong, for people.")
    problems: list[ProblemOut] = Field(
        default_factory=list, description="Every problem found (validation errors only)."
    )


class EvaluationOut(BaseModel):
    """A stored evaluation (its metadata; the records stay in storage)."""

    id: str = Field(description="Evaluation id.")
    name: str | None = Field(description="A label given at upload.")
    created_at: UtcDatetime = Field(description="When it was stored (UTC).")
    sha256: str | None = Field(
        description="SHA-256 of what was uploaded: the canonical JSON of a bundle document, "
        "or the raw bytes of a JSONL upload."
    )
    n_items: int = Field(description="Number of items.")
    n_models: int = Field(description="Number of models.")
    n_outputs: int = Field(description="Number of model outputs.")
    n_verdicts: int = Field(description="Number of judge verdicts.")

    @classmethod
    def of(cls, info: EvaluationInfo) -> EvaluationOut:
        return cls(
            id=info.id,
            name=info.name,
            created_at=info.created_at,
            sha256=info.sha256,
            n_items=info.n_items,
            n_models=info.n_models,
            n_outputs=info.n_outputs,
            n_verdicts=info.n_verdicts,
        )


class EvaluationPage(BaseModel):
    """One page of evaluations, newest first."""

    items: list[EvaluationOut] = Field(description="The evaluations on this page.")
    limit: int = Field(description="Page size asked for.")
    offset: int = Field(description="Evaluations skipped before this page.")
    next: str | None = Field(description="URL of the next page; null on the last page.")


class StageProgressOut(BaseModel):
    """Model calls of one kind."""

    done: int = Field(description="Calls answered.")
    failed: int = Field(description="Calls that failed for good.")
    pending: int = Field(description="Calls not made yet.")


class FailureOut(BaseModel):
    """A model that failed for good."""

    model: str | None = Field(description="Display name of the model.")
    reason: str | None = Field(description="Why it failed (credentials are never shown).")


class AuditOut(BaseModel):
    """An audit and how far it has got."""

    id: str = Field(description="Audit id.")
    name: str = Field(description="A label for people (from the spec).")
    status: AuditState = Field(description="queued, running, succeeded, failed or cancelled.")
    stage: str = Field(description="new, collect, judge, analyze or done.")
    progress: dict[str, StageProgressOut] = Field(
        description="Model calls per kind (mcq, answer, judge): done, failed, pending."
    )
    cost_usd: float = Field(description="Cost of the model calls so far, in USD.")
    budget_usd: float | None = Field(description="Budget from the spec, in USD.")
    budget_exhausted: bool = Field(description="Whether calls were left unsent for the budget.")
    failures: list[FailureOut] = Field(description="Models that failed for good, and why.")
    error: str | None = Field(description="Why the audit failed or was cancelled.")
    evaluation_id: str | None = Field(description="The stored evaluation audited, if any.")
    created_at: UtcDatetime = Field(description="When it was submitted (UTC).")
    updated_at: UtcDatetime = Field(description="Last change (UTC).")
    finished_at: UtcDatetime | None = Field(description="When it ended (UTC).")
    spec: dict[str, Any] = Field(description="The audit spec as stored (it holds no secrets).")

    @classmethod
    def of(cls, status: AuditStatus, spec: dict[str, Any]) -> AuditOut:
        document = status.model_dump()
        document["failures"] = [
            {"model": f.get("model"), "reason": f.get("reason")} for f in status.failures
        ]
        return cls.model_validate({**document, "spec": spec})


class AuditPage(BaseModel):
    """One page of audits, newest first."""

    items: list[AuditOut] = Field(description="The audits on this page.")
    limit: int = Field(description="Page size asked for.")
    offset: int = Field(description="Audits skipped before this page.")
    next: str | None = Field(description="URL of the next page; null on the last page.")


class Health(BaseModel):
    """The process is up."""

    status: Literal["ok"] = Field(description="Always `ok` when the process answers.")


class CheckOut(BaseModel):
    """One dependency's readiness."""

    ok: bool = Field(description="Whether it answered.")
    error: str | None = Field(default=None, description="The kind of error, if it did not.")


class Readiness(BaseModel):
    """Whether the service can do its work: the database and the broker answer."""

    status: Literal["ready", "not ready"] = Field(description="`ready` if every check passed.")
    checks: dict[str, CheckOut] = Field(description="Per dependency: database, broker.")
