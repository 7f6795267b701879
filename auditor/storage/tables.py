"""Every table of the service, in one module on one declarative base (one metadata: Alembic and
`Store.delete_all` see all of them). Rows only: reading and writing them is the repositories'
work (`auditor.storage.store`, `auditor.storage.trail`) and the services'."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "ApiKeyRow",
    "AuditCallRow",
    "AuditRow",
    "Base",
    "CallRow",
    "EvaluationRow",
    "ItemRow",
    "ModelRow",
    "OutputRow",
    "ResultRow",
    "ScheduleRow",
    "ScheduleRunRow",
    "SigningKeyRow",
    "TenantRow",
    "TrailEventRow",
    "TrailHeadRow",
    "VerdictRow",
    "WebhookDeliveryRow",
]


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


# --- evaluations, audits, calls, results --------------------------------------------------------


class EvaluationRow(Base):
    __tablename__ = "evaluations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    sha256: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="ready")
    n_items: Mapped[int] = mapped_column(Integer, default=0)
    n_models: Mapped[int] = mapped_column(Integer, default=0)
    n_outputs: Mapped[int] = mapped_column(Integer, default=0)
    n_verdicts: Mapped[int] = mapped_column(Integer, default=0)


def _evaluation_fk() -> Any:
    return ForeignKey("evaluations.id", ondelete="CASCADE")


class ItemRow(Base):
    __tablename__ = "eval_items"

    evaluation_id: Mapped[str] = mapped_column(String(32), _evaluation_fk(), primary_key=True)
    item_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    question: Mapped[str] = mapped_column(Text)
    options: Mapped[list[Any]]
    gold: Mapped[int] = mapped_column(Integer)
    difficulty: Mapped[float | None] = mapped_column(Float)
    category: Mapped[str | None] = mapped_column(String(200))


class ModelRow(Base):
    __tablename__ = "eval_models"

    evaluation_id: Mapped[str] = mapped_column(String(32), _evaluation_fk(), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    provider: Mapped[str | None] = mapped_column(String(200))
    family: Mapped[str | None] = mapped_column(String(200))
    params: Mapped[float | None] = mapped_column(Float)


class OutputRow(Base):
    __tablename__ = "eval_outputs"

    evaluation_id: Mapped[str] = mapped_column(String(32), _evaluation_fk(), primary_key=True)
    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    item: Mapped[str] = mapped_column(String(200), primary_key=True)
    probs: Mapped[list[Any] | None]
    choice: Mapped[int | None] = mapped_column(Integer)
    response: Mapped[str | None] = mapped_column(Text)


class VerdictRow(Base):
    __tablename__ = "eval_verdicts"

    evaluation_id: Mapped[str] = mapped_column(String(32), _evaluation_fk(), primary_key=True)
    judge: Mapped[str] = mapped_column(String(200), primary_key=True)
    candidate: Mapped[str] = mapped_column(String(200), primary_key=True)
    item: Mapped[str] = mapped_column(String(200), primary_key=True)
    verdict: Mapped[int | None] = mapped_column(Integer)
    raw: Mapped[str | None] = mapped_column(Text)


class AuditRow(Base):
    __tablename__ = "audits"
    __table_args__ = (
        Index("ix_audits_tenant_idempotency", "tenant", "idempotency_key", unique=True),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200))
    spec: Mapped[dict[str, Any]]
    evaluation_id: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(24), index=True)
    stage: Mapped[str] = mapped_column(String(24))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    budget_usd: Mapped[float | None] = mapped_column(Float)
    budget_exhausted: Mapped[bool] = mapped_column(Boolean, default=False)
    failures: Mapped[list[Any]] = mapped_column(JSON, default=list)
    error: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    batches_outstanding: Mapped[int] = mapped_column(Integer, default=0)  # no longer used
    wake_at: Mapped[float] = mapped_column(Float, default=0.0)
    """When the audit next looks at its calls again (clock seconds; 0: no look-again set)."""
    started_at: Mapped[datetime | None]  # its first calls were planned (the deadline's start)


class CallRow(Base):
    """One model call, keyed by the hash of everything that changes its output."""

    __tablename__ = "calls"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    stage: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(200))
    item: Mapped[str] = mapped_column(String(200))
    candidate: Mapped[str | None] = mapped_column(String(200))
    request: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    text: Mapped[str | None] = mapped_column(Text)
    parsed: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_token: Mapped[str | None] = mapped_column(String(32))
    leased_until: Mapped[float] = mapped_column(Float, default=0.0)
    claimed: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime]
    provider_model: Mapped[str | None] = mapped_column(String(200))  # as the provider reported


class AuditCallRow(Base):
    __tablename__ = "audit_calls"

    audit_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("audits.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    stage: Mapped[str] = mapped_column(String(16))


class ResultRow(Base):
    __tablename__ = "results"

    audit_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("audits.id", ondelete="CASCADE"), primary_key=True
    )
    report: Mapped[dict[str, Any]]
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]


# --- tenants and API keys ----------------------------------------------------------------------


class TenantRow(Base):
    __tablename__ = "tenants"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime]


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    tenant: Mapped[str] = mapped_column(
        String(64), ForeignKey("tenants.name", ondelete="CASCADE"), index=True
    )
    name: Mapped[str | None] = mapped_column(String(200))
    key_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


# --- schedules and webhook deliveries ----------------------------------------------------------


class ScheduleRow(Base):
    __tablename__ = "schedules"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    schema_version: Mapped[str] = mapped_column(String(8))
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200))
    spec: Mapped[dict[str, Any]]
    cron: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    webhook_url: Mapped[str | None] = mapped_column(String(2000))
    webhook_secret: Mapped[str | None] = mapped_column(String(200))
    notify: Mapped[dict[str, Any]]
    baseline_audit_id: Mapped[str | None] = mapped_column(String(32))
    next_due_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    last_slot_at: Mapped[datetime | None] = mapped_column(DateTime)
    version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)


class ScheduleRunRow(Base):
    """One run of a schedule: the slot it serves and, once created, its audit."""

    __tablename__ = "schedule_runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    schedule_id: Mapped[str] = mapped_column(String(32), index=True)
    tenant: Mapped[str] = mapped_column(String(64))
    slot_at: Mapped[datetime] = mapped_column(DateTime)
    missed_slots: Mapped[int] = mapped_column(Integer, default=0)
    claimed_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16))
    spec: Mapped[dict[str, Any]]
    audit_id: Mapped[str | None] = mapped_column(String(32), index=True)
    pins: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    drift: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)


class WebhookDeliveryRow(Base):
    """One notification to a schedule's webhook and what became of it."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    schedule_id: Mapped[str] = mapped_column(String(32), index=True)
    run_id: Mapped[str | None] = mapped_column(String(32))
    event: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(String(2000))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    history: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime)


# --- audit trail -------------------------------------------------------------------------------


class TrailEventRow(Base):
    __tablename__ = "trail_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    schema_version: Mapped[str] = mapped_column(String(8))
    at: Mapped[str] = mapped_column(String(40))
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(200))
    object_sha256: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class TrailHeadRow(Base):
    """The chain head: the last entry's sequence number and hash (one row, id 1)."""

    __tablename__ = "trail_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


# --- signing ------------------------------------------------------------------------------------


class SigningKeyRow(Base):
    """The service's signing key when no key file is configured."""

    __tablename__ = "signing_keys"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32))
    private_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
