"""Service functions of scheduled audits, drift, notifications and signed reports.

They tie storage (`auditor.services.schedules`, `auditor.services.trail`,
`auditor.services.signing`) to the pure drift statistics (`auditor.services.drift`) and to the
audit services; the CLI, the REST API, beat's scheduler and the worker tasks call them, and none of
them calls a model or Celery.

What happens to a scheduled run:

1. beat's scheduler calls `start_due_runs`: due schedules are claimed by compare-and-set (one
   run for the latest missed slot, see `auditor.services.schedules`) and each claimed run becomes an
   audit (idempotency key ``schedule-run:<run id>``); beat then sends ``auditor.start``.
2. the run's model calls are keyed in the scope `call_scope` gives (``<tenant>/run/<run id>``),
   so every run asks the providers afresh instead of reusing the previous run's stored calls:
   a re-audit must see what the judge answers today.
3. `annotate_scheduled_result` (from `auditor.services.audits.finalize_audit`, before the result is
   stored) pins what the run used and compares it with the previous run and the baseline; the
   drift, the partial-r history and the alerts go into the run and into the result's
   provenance (``provenance.scheduled_run``, ``provenance.drift``).
4. `audit_finished` (from the worker, once the audit's final status is set) appends
   ``audit.finished`` to the audit trail and turns the run's alerts into a webhook delivery.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

import numpy as np

from auditor.schemas.canonical import canonical_sha256, json_document
from auditor.schemas.result import AffinityReport, Provenance
from auditor.services import schedules
from auditor.services.drift import (
    DriftComparison,
    RunSnapshot,
    compare_runs,
    drift_alerts,
    history_point,
)
from auditor.services.notifications import create_delivery
from auditor.services.schedules import (
    NotifyPolicy,
)
from auditor.services.signing import (
    SignedManifest,
    load_or_create_key,
    manifest_sha256,
    sign_manifest,
)
from auditor.services.trail import acting_as, audit_sha256, record_event
from auditor.settings import DEFAULT_DRIFT_BOOTSTRAP, WebhookSettings
from auditor.storage.repositories import schedules as schedule_rows
from auditor.storage.repositories import trail as trail_rows
from auditor.storage.store import Store, utcnow
from auditor.storage.tables import AuditRow, ScheduleRow, ScheduleRunRow

__all__ = [
    "DRIFT_SEED_STREAM",
    "annotate_scheduled_result",
    "audit_finished",
    "call_scope",
    "record_audit_started",
    "run_pins",
    "sign_report_files",
    "start_due_runs",
    "validate_timing",
]

log = logging.getLogger(__name__)

DRIFT_SEED_STREAM: Final = 0x6472696674
"""Second entropy word of the drift bootstrap's seed (``[analysis seed, this]``), so drift
draws never coincide with the analysis' own resampling streams."""
HISTORY_LIMIT: Final = 200
"""Runs shown in a drift history (the latest)."""
SCHEDULER_ACTOR: Final = "system:scheduler"
WORKER_ACTOR: Final = "system:worker"


# --- validation at the boundary -----------------------------------------------------------------


def validate_timing(cron: str, timezone: str, *, min_interval: float) -> str:
    """The cleaned cron expression; ValueError if invalid or more frequent than allowed."""
    cron = schedules.validate_cron(cron)
    schedules.validate_timezone(timezone)
    period = schedules.shortest_period(cron, timezone, utcnow())
    if period.total_seconds() < min_interval:
        raise ValueError(
            f"cron: runs every {period.total_seconds():g} s at times; this server allows "
            f"schedules no more frequent than every {min_interval:g} s"
        )
    return cron


# --- trail hooks of the audit services ----------------------------------------------------------


def record_audit_started(store: Store, audit: AuditRow) -> None:
    """Trail entry of a newly created audit (a bundle file it stored as an evaluation has
    its own entry, from storage)."""
    record_event(
        store,
        tenant=audit.tenant,
        action="audit.started",
        object_type="audit",
        object_id=audit.id,
        object_sha256=audit_sha256(audit),
        detail={"name": audit.name, "evaluation_id": audit.evaluation_id},
    )


# --- starting scheduled runs --------------------------------------------------------------------


def call_scope(store: Store, audit: AuditRow) -> str:
    """What call keys are scoped by: the tenant, or ``<tenant>/run/<run id>`` for a scheduled
    run (so it asks the providers again rather than reusing an earlier run's answers)."""
    run = schedules.run_of_audit(store, audit.id)
    return audit.tenant if run is None else f"{audit.tenant}/run/{run.id}"


def _run_spec(run: ScheduleRunRow) -> Any:
    from auditor.schemas.spec import AuditSpec

    spec = AuditSpec.model_validate(run.spec)
    slot = run.slot_at.strftime("%Y-%m-%d %H:%M:%S")
    return spec.model_copy(update={"name": f"{spec.name} (scheduled {slot} UTC)"[:200]})


def start_due_runs(store: Store, *, now: datetime | None = None) -> list[str]:
    """Claim every due run and create its audit; returns the audit ids to start.

    Runs claimed earlier whose audit was never created (the scheduler stopped in between)
    are created now too; creation is idempotent per run.
    """
    from auditor.schemas.spec import SpecError
    from auditor.services.audits import submit_audit

    schedules.claim_due(store, now=now)
    started: list[str] = []
    with acting_as(SCHEDULER_ACTOR):
        for run in schedules.unstarted_runs(store):
            try:
                audit, _ = submit_audit(
                    store,
                    _run_spec(run),
                    tenant=run.tenant,
                    idempotency_key=f"schedule-run:{run.id}",
                )
            except (SpecError, KeyError, ValueError) as error:
                log.warning("scheduled run %s cannot start: %s", run.id, error)
                schedules.fail_run(store, run.id, f"{type(error).__name__}: {error}")
                continue
            schedules.mark_started(store, run.id, audit.id)
            started.append(audit.id)
    return started


# --- what a run used ----------------------------------------------------------------------------


def run_pins(store: Store, audit: AuditRow) -> dict[str, Any]:
    """What a run used: models as requested and as the provider reported them, sampling,
    judge prompt template hashes, the item set's hash, the data source."""
    from auditor.prompts import PROMPTS_VERSION
    from auditor.services.audits import load_base

    spec, base = load_base(store, audit)
    reported: dict[str, set[str]] = {}
    for call in store.calls_of(audit.id, status="done"):
        if call.provider_model:
            reported.setdefault(call.model, set()).add(call.provider_model)
    template = spec.judge_prompt.resolve()
    items = [
        {"id": i.id, "question": i.question, "options": i.options, "gold": i.gold}
        for i in base.items
    ]
    evaluation = store.get_evaluation(audit.evaluation_id) if audit.evaluation_id else None
    return {
        "schema_version": "1.0",
        "audit_id": audit.id,
        "call_scope": call_scope(store, audit),
        "models": [
            {
                "name": m.display_name,
                "requested": m.model,
                "api_base": m.api_base,
                "params": m.params,
                "provider_reported": sorted(reported.get(m.display_name, ())),
                "role": "judge" if m in spec.judges else "candidate",
            }
            for m in spec.all_models
        ],
        "sampling": spec.sampling.model_dump(mode="json"),
        "prompt_templates": {template.name: template.sha256},
        "prompts_version": PROMPTS_VERSION,
        "item_set_sha256": canonical_sha256(items),
        "n_items": len(items),
        "evaluation": {"id": evaluation.id, "sha256": evaluation.sha256} if evaluation else None,
        "simulation_sha256": canonical_sha256(spec.simulation.model_dump(mode="json"))
        if spec.simulation is not None
        else None,
    }


# --- drift --------------------------------------------------------------------------------------


def _verdicts(store: Store, audit_id: str) -> dict[tuple[str, str, str], int | None]:
    verdicts: dict[tuple[str, str, str], int | None] = {}
    for call in store.calls_of(audit_id, stage="judge", status="done"):
        if call.candidate is None:
            continue
        value = (call.parsed or {}).get("verdict")
        verdicts[(call.model, call.candidate, call.item)] = value if value in (0, 1) else None
    return verdicts


def _snapshot(store: Store, audit_id: str, report: AffinityReport | None = None) -> RunSnapshot:
    if report is None:
        document = store.get_result(audit_id)
        if document is None:
            raise KeyError(f"audit {audit_id} has no stored result")
        report = AffinityReport.model_validate(document)
    return RunSnapshot(audit_id=audit_id, report=report, verdicts=_verdicts(store, audit_id))


def _succeeded_runs_before(store: Store, run: ScheduleRunRow) -> list[ScheduleRunRow]:
    """Earlier runs of the schedule whose audit succeeded, oldest first."""
    return schedule_rows.succeeded_runs_before(store, run)


def _rng(report: AffinityReport, against: str) -> np.random.Generator:
    return np.random.default_rng(
        [report.settings.seed, DRIFT_SEED_STREAM, int(against == "baseline")]
    )


def annotate_scheduled_result(
    store: Store, audit: AuditRow, report: AffinityReport, *, n_bootstrap: int | None = None
) -> AffinityReport:
    """For a scheduled run: the result with its pins and drift in the provenance (also kept
    on the run). Any other audit's result is returned unchanged. Never raises: drift is
    secondary to the result, so a failure is logged and kept on the run instead."""
    run = schedules.run_of_audit(store, audit.id)
    if run is None:
        return report
    try:
        return _annotate(store, audit, run, report, n_bootstrap)
    except Exception as error:  # the audit's own result must still be stored
        log.exception("drift of scheduled run %s failed", run.id)
        schedules.fail_analysis(store, run.id, f"drift failed: {type(error).__name__}: {error}")
        return report


def _annotate(
    store: Store,
    audit: AuditRow,
    run: ScheduleRunRow,
    report: AffinityReport,
    n_bootstrap: int | None,
) -> AffinityReport:
    resamples = DEFAULT_DRIFT_BOOTSTRAP if n_bootstrap is None else n_bootstrap
    schedule = _schedule_row(store, run.schedule_id)
    pins = run_pins(store, audit)
    earlier = _succeeded_runs_before(store, run)
    current = _snapshot(store, audit.id, report)
    previous_run = earlier[-1] if earlier else None
    baseline_id = schedule.baseline_audit_id if schedule else None
    if baseline_id is None or baseline_id == audit.id or store.get_result(baseline_id) is None:
        baseline_id = earlier[0].audit_id if earlier else None
    vs_previous: DriftComparison | None = None
    vs_baseline: DriftComparison | None = None
    if previous_run is not None and previous_run.audit_id is not None:
        vs_previous = compare_runs(
            _snapshot(store, previous_run.audit_id),
            current,
            against="previous",
            n_bootstrap=resamples,
            rng=_rng(report, "previous"),
        )
    if baseline_id is not None:
        if vs_previous is not None and baseline_id == vs_previous.before_audit_id:
            vs_baseline = vs_previous.model_copy(update={"against": "baseline"})
        else:
            vs_baseline = compare_runs(
                _snapshot(store, baseline_id),
                current,
                against="baseline",
                n_bootstrap=resamples,
                rng=_rng(report, "baseline"),
            )
    previous_vs_baseline = None
    if previous_run is not None and previous_run.drift and previous_run.drift.get("baseline"):
        previous_vs_baseline = DriftComparison.model_validate(previous_run.drift["baseline"])
    policy = NotifyPolicy.model_validate(schedule.notify if schedule else {})
    alerts = drift_alerts(
        vs_previous,
        vs_baseline,
        on_flag=policy.on_flag,
        effect_growth=policy.effect_growth,
        require_significant=policy.require_significant,
        previous_against_baseline=previous_vs_baseline,
    )
    history = [
        {
            "audit_id": r.audit_id,
            "slot_at": r.slot_at.isoformat() + "Z",
            "judges": (r.drift or {}).get("point")
            or history_point(_snapshot(store, r.audit_id).report),
        }
        for r in earlier[-(HISTORY_LIMIT - 1) :]
        if r.audit_id is not None
    ]
    point = history_point(report)
    history.append(
        {"audit_id": audit.id, "slot_at": run.slot_at.isoformat() + "Z", "judges": point}
    )
    drift = {
        "schema_version": "1.0",
        "schedule_id": run.schedule_id,
        "run_id": run.id,
        "slot_at": run.slot_at.isoformat() + "Z",
        "missed_slots": run.missed_slots,
        "previous_audit_id": vs_previous.before_audit_id if vs_previous else None,
        "baseline_audit_id": baseline_id,
        "previous": vs_previous.model_dump(mode="json") if vs_previous else None,
        "baseline": vs_baseline.model_dump(mode="json") if vs_baseline else None,
        "alerts": [a.model_dump(mode="json") for a in alerts],
        "point": point,
        "history": history,
        "note": None
        if vs_previous is not None
        else "first successful run of the schedule: nothing to compare with yet",
    }
    schedules.save_run_analysis(store, run.id, pins=pins, drift=drift)
    provenance = report.provenance.model_dump(mode="json")
    provenance["scheduled_run"] = {
        "schedule_id": run.schedule_id,
        "run_id": run.id,
        "slot_at": run.slot_at.isoformat() + "Z",
        "missed_slots": run.missed_slots,
        "pins": pins,
    }
    provenance["drift"] = {k: v for k, v in drift.items() if k != "point"}
    return report.model_copy(update={"provenance": Provenance.model_validate(provenance)})


def _schedule_row(store: Store, schedule_id: str) -> ScheduleRow | None:
    return schedule_rows.get_schedule(store, schedule_id)


# --- finishing ----------------------------------------------------------------------------------


def audit_finished(
    store: Store, audit_id: str, *, webhook: WebhookSettings | None = None
) -> list[str]:
    """Trail entry of a finished audit; for a scheduled run, the first success becomes the
    schedule's baseline and the run's alerts become a webhook delivery. Returns the ids of
    deliveries to send. Call once per audit, when its final status was set."""
    audit = store.get_audit(audit_id)
    if audit is None:
        return []
    cutoff = utcnow()
    result, (calls_digest, n_calls) = trail_rows.finished_audit(store, audit_id, cutoff=cutoff)
    result_sha = result.sha256 if result is not None else None
    with acting_as(WORKER_ACTOR):
        record_event(
            store,
            tenant=audit.tenant,
            action="audit.finished",
            object_type="audit",
            object_id=audit.id,
            object_sha256=result_sha,
            detail={
                "status": audit.status,
                "error": audit.error,
                "cost_usd": audit.cost_usd,
                "calls_sha256": calls_digest,
                "calls": n_calls,
                "calls_cutoff": cutoff.isoformat(),
            },
        )
        run = schedules.run_of_audit(store, audit_id)
        if run is None or audit.status != "succeeded":
            return []
        schedule = _schedule_row(store, run.schedule_id)
        if schedule is None:
            return []
        if schedule.baseline_audit_id is None:
            schedules.set_baseline(
                store, schedule.id, tenant=schedule.tenant, audit_id=audit.id, only_if_unset=True
            )
        alerts = (run.drift or {}).get("alerts") or []
        if not alerts or not schedule.webhook_url:
            return []
        return [create_delivery(store, schedule, run, alerts, settings=webhook)]


# --- signed reports -----------------------------------------------------------------------------


def sign_report_files(
    store: Store,
    audit_id: str,
    files: Mapping[str, bytes],
    *,
    report: AffinityReport,
    tenant: str,
    key_path: str | None = None,
) -> SignedManifest:
    """Sign a manifest of rendered report files and append ``report.rendered`` to the trail.

    The result SHA-256 is that of the report's JSON document, as the JSON report holds it
    (the recipe of `reports.canonical`)."""
    key = load_or_create_key(store, key_path)
    signed = sign_manifest(
        files,
        key=key,
        result_sha256=canonical_sha256(json_document(report)),
        audit_id=audit_id,
        tenant=tenant,
        input_sha256=report.provenance.input_sha256,
    )
    record_event(
        store,
        tenant=tenant,
        action="report.rendered",
        object_type="audit",
        object_id=audit_id,
        object_sha256=manifest_sha256(signed),
        detail={
            "files": [f.name for f in signed.manifest.files],
            "key_id": signed.manifest.key_id,
            "result_sha256": signed.manifest.result_sha256,
        },
    )
    return signed
