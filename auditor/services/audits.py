"""Service functions shared by the CLI, the REST API and the workers.

They tie storage to the pure pipeline and statistics; they never call models or Celery (the
workers do), so they are safe to use from any process.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import datetime
from typing import Any, Literal, TypeAlias, cast

from pydantic import BaseModel, Field

from auditor.schemas.bundle import Bundle, Problem, load_bundle, validate_bundle
from auditor.schemas.canonical import json_document
from auditor.schemas.result import AffinityReport
from auditor.schemas.spec import AuditSpec
from auditor.services.evaluations import EvaluationNotFound, visible_evaluation
from auditor.services.governance import annotate_scheduled_result, call_scope, record_audit_started
from auditor.services.planning import (
    CallKind,
    CallOutcome,
    answers_of,
    assemble_bundle,
    base_bundle,
    check_design,
    fan_out_grades,
    fan_out_verdicts,
    grade_calls,
    identical_probability_notes,
    judge_calls,
    mcq_variant_calls,
    reading_notes,
)
from auditor.services.policy import spec_problems
from auditor.settings import DEFAULT_DRIFT_BOOTSTRAP
from auditor.storage.store import Store
from auditor.storage.tables import AuditRow

__all__ = [
    "ACTIVE_STATUSES",
    "AuditNotActive",
    "AuditNotFinished",
    "AuditNotFound",
    "AuditStatus",
    "IdempotencyKeyReused",
    "StageProgress",
    "StoredAudit",
    "admission_problems",
    "audit_status",
    "cancel_audit",
    "design_problems",
    "finalize_audit",
    "finished_result",
    "load_base",
    "needs_start",
    "outcomes_of",
    "submit_audit",
    "visible_audit",
]

StoredAudit: TypeAlias = AuditRow
"""An audit as stored (id, tenant, spec, status, stage, cost, error, times), as `submit_audit`
and the store return it."""

ACTIVE_STATUSES = ("queued", "running")
TERMINAL_STATUSES = ("succeeded", "failed", "cancelled")
STAGES = ("new", "collect", "judge", "analyze", "done")


AuditState = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class StageProgress(BaseModel):
    done: int = 0
    failed: int = 0
    pending: int = 0


class AuditStatus(BaseModel):
    """What a client polls while an audit runs."""

    id: str
    name: str
    status: AuditState
    stage: str = Field(description="new, collect, judge, analyze or done.")
    progress: dict[str, StageProgress] = Field(
        description="Calls per kind (mcq, answer, judge): done, failed, pending."
    )
    cost_usd: float
    budget_usd: float | None
    budget_exhausted: bool
    failures: list[dict[str, Any]] = Field(description="Models that failed for good, and why.")
    error: str | None
    evaluation_id: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


def design_problems(spec: AuditSpec, evaluation: Bundle | None = None) -> list[Problem]:
    """Why the spec's design cannot answer its questions (`planning.check_design`), each
    located by the spec field it concerns, before anything is stored or sent. For a spec that
    audits a stored evaluation, ``evaluation`` is that bundle (None: a simulation)."""
    problems = check_design(spec, base_bundle(spec, evaluation))
    located = []
    for problem in problems:
        path, _, message = problem.partition(": ")
        located.append(Problem(path, message) if message else Problem("spec", problem))
    return located


def admission_problems(
    store: Store,
    spec: AuditSpec,
    *,
    tenant: str,
    allowed_api_bases: Collection[str] | None = None,
    at: str = "",
) -> list[Problem]:
    """Every reason to refuse a spec before anything is stored or sent, located by its field
    (prefixed with ``at``, e.g. ``"spec"`` inside a schedule).

    ``allowed_api_bases`` given: the spec comes from a tenant over the API and must also keep
    to `policy.spec_problems` (None: the operator's own spec, trusted). An ``evaluation_id``
    must name one of the tenant's evaluations whose import is complete. A simulation (no
    evaluation, no bundle file) must have a design that can answer its questions; an audit of
    stored data is checked by the worker that loads it.
    """
    problems = (
        []
        if allowed_api_bases is None
        else spec_problems(spec, allowed_api_bases=allowed_api_bases)
    )
    if spec.evaluation_id is not None:
        try:
            visible_evaluation(store, spec.evaluation_id, tenant=tenant)
        except EvaluationNotFound:
            problems.append(Problem("evaluation_id", f"no evaluation {spec.evaluation_id!r}"))
    if not problems and spec.evaluation_id is None and spec.bundle is None:
        problems = design_problems(spec)
    prefix = f"{at}." if at else ""
    return [Problem(f"{prefix}{p.path}", p.message) for p in problems]


class IdempotencyKeyReused(ValueError):
    """The idempotency key already created an audit with a different spec."""

    def __init__(self, audit: AuditRow) -> None:
        self.audit = audit
        super().__init__(f"already used for audit {audit.id} with a different spec")


def submit_audit(
    store: Store, spec: AuditSpec, *, tenant: str, idempotency_key: str | None = None
) -> tuple[AuditRow, bool]:
    """Validate what the spec references and create the audit (status ``queued``).

    A spec that names a bundle file stores it as an evaluation first, so workers on other
    machines read the same data. Returns (audit, created); with an ``idempotency_key`` used
    before, the audit it created (`IdempotencyKeyReused` if that audit's spec differs).
    """
    evaluation_id = spec.evaluation_id
    if spec.evaluation_id is not None:
        try:
            visible_evaluation(store, spec.evaluation_id, tenant=tenant)
        except EvaluationNotFound:
            raise KeyError(f"evaluation_id: no evaluation {spec.evaluation_id!r}") from None
    elif spec.bundle is not None:
        evaluation_id = store.add_evaluation(
            load_bundle(spec.bundle), tenant=tenant, name=spec.name
        )
    stored_spec = (
        spec.model_copy(update={"bundle": None, "evaluation_id": evaluation_id})
        if (spec.bundle is not None)
        else spec
    )
    audit, created = store.create_audit(
        stored_spec.public_dict(),
        tenant=tenant,
        name=spec.name,
        evaluation_id=evaluation_id,
        budget_usd=spec.budget_usd,
        idempotency_key=idempotency_key,
    )
    if created:  # the audit trail
        record_audit_started(store, audit)
    elif audit.spec != stored_spec.public_dict():
        raise IdempotencyKeyReused(audit)
    return audit, created


def needs_start(audit: AuditRow, created: bool) -> bool:
    """Whether to send the audit's start to the workers: when just created, and again when a
    retried create finds it never started (the first send may have been lost; starting twice is
    safe, workers advance an audit by compare-and-set on its stage)."""
    return created or (audit.status == "queued" and audit.stage == "new")


class AuditNotFound(LookupError):
    """No such audit for the tenant, or (succeeded) no result stored for it."""


class AuditNotFinished(RuntimeError):
    """The audit has not succeeded, so it has no result (yet)."""

    def __init__(self, audit: AuditRow) -> None:
        self.audit = audit
        super().__init__(f"audit is {audit.status}: it has no result")


class AuditNotActive(RuntimeError):
    """The audit has already finished, so it cannot be cancelled."""

    def __init__(self, audit: AuditRow) -> None:
        self.audit = audit
        super().__init__(f"audit already {audit.status}")


def visible_audit(store: Store, audit_id: str, *, tenant: str) -> AuditRow:
    """The tenant's audit; `AuditNotFound` when there is none (or it is another tenant's)."""
    audit = store.get_audit(audit_id, tenant=tenant)
    if audit is None:
        raise AuditNotFound("audit not found")
    return audit


def cancel_audit(store: Store, audit_id: str, *, tenant: str) -> AuditRow:
    """Cancel a queued or running audit (workers make no more of its calls); `AuditNotFound`
    or `AuditNotActive` (it has already finished) otherwise."""
    audit, cancelled = store.cancel_audit(audit_id, tenant=tenant)
    if audit is None:
        raise AuditNotFound("audit not found")
    if not cancelled:
        raise AuditNotActive(audit)
    return audit


def finished_result(
    store: Store, audit_id: str, *, tenant: str | None = None
) -> tuple[AuditRow, dict[str, Any]]:
    """A succeeded audit and its stored result document: the one rule that the API's result
    and report endpoints, `auditor report` and signed report files all apply. ``tenant`` None:
    any tenant (the CLI, on its own database)."""
    audit = store.get_audit(audit_id, tenant=tenant)
    if audit is None:
        raise AuditNotFound("audit not found")
    if audit.status != "succeeded":
        raise AuditNotFinished(audit)
    document = store.get_result(audit_id, tenant=tenant)
    if document is None:
        raise AuditNotFound("no result stored for this audit")
    return audit, document


def audit_status(store: Store, audit: AuditRow) -> AuditStatus:
    progress = {
        kind: StageProgress(**counts) for kind, counts in sorted(store.progress(audit.id).items())
    }
    return AuditStatus(
        id=audit.id,
        name=audit.name,
        status=cast(AuditState, audit.status),
        stage=audit.stage,
        progress=progress,
        cost_usd=audit.cost_usd,
        budget_usd=audit.budget_usd,
        budget_exhausted=audit.budget_exhausted,
        failures=audit.failures,
        error=audit.error,
        evaluation_id=audit.evaluation_id,
        created_at=audit.created_at,
        updated_at=audit.updated_at,
        finished_at=audit.finished_at,
    )


def load_base(store: Store, audit: AuditRow) -> tuple[AuditSpec, Bundle]:
    spec = AuditSpec.model_validate(audit.spec)
    evaluation = store.get_bundle(audit.evaluation_id) if audit.evaluation_id is not None else None
    return spec, base_bundle(spec, evaluation)


def outcomes_of(store: Store, audit_id: str, kind: str | None = None) -> list[CallOutcome]:
    return [
        CallOutcome(
            kind=cast(CallKind, row.stage),
            model=row.model,
            item=row.item,
            candidate=row.candidate,
            status=row.status,
            text=row.text,
            parsed=row.parsed,
            key=row.key,
            error=row.error,
        )
        for row in store.call_outcomes(audit_id, stage=kind)
    ]


def collected_answers(store: Store, audit_id: str, base: Bundle) -> dict[tuple[str, str], str]:
    return answers_of(base, outcomes_of(store, audit_id, "answer"))


def finalize_audit(
    store: Store, audit: AuditRow, *, drift_bootstrap: int = DEFAULT_DRIFT_BOOTSTRAP
) -> AffinityReport:
    """Assemble everything collected, analyze it, and store the versioned result (a scheduled
    run's drift CI takes ``drift_bootstrap`` resamples, setting ``AUDITOR_DRIFT_BOOTSTRAP``)."""
    from auditor.services.analysis import analyze_now  # the statistics load only when analyzing

    spec, base = load_base(store, audit)
    collected = outcomes = outcomes_of(store, audit.id)
    # Every planned verdict, one per (judge, candidate, item), even where candidates' equal
    # answers shared one call; a planned verdict with no outcome stops the analysis here.
    scope = call_scope(store, audit)
    answers = answers_of(base, outcomes)
    planned = judge_calls(spec, scope, base, answers)
    # MCQ answers under a template variant are told apart by their planned call's key.
    variant_of = {call.key: call.variant for call in mcq_variant_calls(spec, scope, base)}
    outcomes = [
        replace(o, variant=variant_of[o.key]) if o.kind == "mcq" and o.key in variant_of else o
        for o in outcomes
        if o.kind not in ("judge", "grade")
    ]
    outcomes += fan_out_verdicts(planned, collected)
    # likewise one grade per answer, where equal answers shared a grader call
    outcomes += fan_out_grades(grade_calls(spec, scope, base, answers), collected)
    bundle = validate_bundle(assemble_bundle(spec, base, outcomes))
    template = spec.judge_prompt.resolve()
    provenance = {
        "audit_id": audit.id,
        "spec": audit.spec,
        "models": [
            {
                "name": m.display_name,
                "model": m.model,
                "api_base": m.api_base,
                "params": m.params,
                "provider": m.provider,
                "family": m.family,
            }
            for m in spec.all_models
        ],
        "prompt_templates": {template.name: template.sha256},
        "judge_prompt": {"name": template.name, "system": template.system, "user": template.user},
    }
    report = analyze_now(bundle, spec.analysis, provenance=provenance)
    failed = store.call_failures(audit.id)
    unparseable_mcq = sum(
        1
        for o in outcomes
        if o.kind == "mcq" and o.status == "done" and (o.parsed or {}).get("choice") is None
    )
    notes = list(report.coverage.notes)
    if unparseable_mcq:
        notes.append(
            f"{unparseable_mcq} multiple-choice replies named no option and were left "
            "out (the model has no answer on those items)."
        )
    notes.extend(reading_notes(outcomes))
    notes.extend(identical_probability_notes(bundle))
    for failure in audit.failures:
        notes.append(f"Model {failure.get('model')} failed for good: {failure.get('reason')}")
    if audit.budget_exhausted:
        notes.append("The cost budget was reached; calls not yet made were not scheduled.")
    report = report.model_copy(
        update={
            "coverage": report.coverage.model_copy(update={"failed_calls": failed, "notes": notes})
        }
    )
    # scheduled runs: pins and drift
    report = annotate_scheduled_result(store, audit, report, n_bootstrap=drift_bootstrap)
    store.save_result(audit.id, json_document(report))  # as the JSON report holds it
    return report
