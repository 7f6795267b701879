"""Celery tasks. Thin: take ids, load from storage, call one core function, store.

The audit's state lives in the database, not in the broker: ``advance`` looks at what is
pending and moves the audit on (collect -> judge -> analyze -> done), dispatching leased batches
of calls as a group. Each batch ends by asking to advance again; ``sweep`` (beat) does the same
for audits whose messages were lost (a broker restart) or whose leases expired (a dead worker).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import lru_cache
from typing import Any, cast

from celery import group

from auditor.schemas.bundle import Bundle
from auditor.schemas.spec import AuditSpec
from auditor.schemas.tasks import ADVANCE_AUDIT, RUN_CALLS, START_AUDIT, SWEEP_AUDITS
from auditor.services.audits import (
    ACTIVE_STATUSES,
    collected_answers,
    finalize_audit,
    load_base,
)
from auditor.services.governance import audit_finished, call_scope
from auditor.services.planning import (
    CallKind,
    collect_calls,
    grade_calls,
    judge_calls,
    read_reply,
)
from auditor.settings import Settings, WorkerSettings
from auditor.storage.store import CallResult, PlannedCall, Store, iter_chunks, new_id, utcnow
from workers.app import app
from workers.llm import CallRequest, ClientPolicy, complete_all, missing_credentials
from workers.ratelimit import RateLimiter, make_buckets
from workers.simulated import register_world
from workers.webhooks import deliver_webhook

__all__ = ["advance", "run_calls", "start_audit", "sweep"]

log = logging.getLogger(__name__)


def _settings() -> Settings:
    return cast(Settings, app.conf.auditor_settings)


@lru_cache(maxsize=4)
def _store(url: str) -> Store:
    return Store(url)


def store() -> Store:
    return _store(_settings().database.url)


@lru_cache(maxsize=32)
def _audit_inputs(url: str, audit_id: str) -> tuple[AuditSpec, Bundle]:
    """The spec and base bundle of an audit (immutable once created; cached per process)."""
    audit = _store(url).get_audit(audit_id)
    if audit is None:
        raise KeyError(f"audit {audit_id!r} not found")
    spec, base = load_base(_store(url), audit)
    if spec.simulation is not None:
        from auditor.services.planning import simulation_api_base

        register_world(simulation_api_base(spec) or "", spec.simulation, spec.simulated_provider)
    return spec, base


def _planned(calls: list[Any]) -> list[PlannedCall]:
    return [PlannedCall(c.key, c.kind, c.model, c.item, c.candidate, c.request) for c in calls]


# --- tasks -------------------------------------------------------------------------------------


@app.task(name=START_AUDIT)
def start_audit(audit_id: str) -> None:
    advance(audit_id)


@app.task(name=SWEEP_AUDITS)
def sweep() -> int:
    """Nudge every active audit (re-dispatches work whose messages or workers were lost)."""
    audits = store().active_audits()
    for audit in audits:
        advance.delay(audit.id)
    return len(audits)


@app.task(name=ADVANCE_AUDIT)
def advance(audit_id: str) -> None:
    db = store()
    audit = db.get_audit(audit_id)
    if audit is None or audit.status not in ACTIVE_STATUSES:
        return
    spec, base = _audit_inputs(db.url, audit_id)
    tenant = audit.tenant
    if audit.stage == "new":
        scope = call_scope(db, audit)  # a scheduled run asks the providers afresh
        db.plan_calls(audit_id, tenant, _planned(collect_calls(spec, scope, base)))
        _fail_models_without_credentials(db, audit_id, spec)
        db.update_audit(audit_id, expect_stage="new", stage="collect", status="running")
        audit = db.get_audit(audit_id)
        assert audit is not None
    if audit.stage in ("collect", "judge"):
        if _dispatch(db, audit_id, audit.budget_usd, audit.cost_usd):
            return
        if audit.stage == "collect":
            answers = collected_answers(db, audit_id, base)
            scope = call_scope(db, audit)
            calls = judge_calls(spec, scope, base, answers) + grade_calls(
                spec, scope, base, answers
            )
            db.plan_calls(audit_id, tenant, _planned(calls))
            if not db.update_audit(audit_id, expect_stage="collect", stage="judge"):
                return  # another worker advanced it
            if _dispatch(db, audit_id, audit.budget_usd, audit.cost_usd):
                return
        if not db.update_audit(audit_id, expect_stage="judge", stage="analyze"):
            return
    audit = db.get_audit(audit_id)
    if audit is None or audit.stage != "analyze":
        return
    try:
        finalize_audit(db, audit, drift_bootstrap=_settings().drift.bootstrap)
    except Exception as error:  # recorded on the audit: a failed analysis is a result too
        log.exception("analysis of audit %s failed", audit_id)
        if db.update_audit(
            audit_id,
            expect_stage="analyze",
            stage="done",
            status="failed",
            error=f"analysis failed: {type(error).__name__}: {error}",
            finished_at=utcnow(),
        ):
            _finished(db, audit_id)
        return
    if db.update_audit(
        audit_id, expect_stage="analyze", stage="done", status="succeeded", finished_at=utcnow()
    ):
        _finished(db, audit_id)


def _fail_models_without_credentials(db: Store, audit_id: str, spec: AuditSpec) -> None:
    """Before anything is sent: a model whose ``api_key_env`` this worker does not hold fails
    for good, by name, and none of its calls is made."""
    failures = []
    for model in spec.all_models:
        if missing_credentials([model.api_key_env]):
            reason = f"environment variable {model.api_key_env} is not set (api_key_env)"
            db.fail_pending(audit_id, model=model.display_name, reason=f"not sent: {reason}")
            failures.append({"model": model.display_name, "reason": reason})
    if failures:
        db.add_failures(audit_id, failures)


def _finished(db: Store, audit_id: str) -> None:
    """The final status is set (by this worker alone): the audit trail's entry and, for a
    scheduled run, its notifications. Neither may undo the audit's result."""
    try:
        deliveries = audit_finished(db, audit_id, webhook=_settings().webhook)
    except Exception:
        log.exception("recording the end of audit %s failed", audit_id)
        return
    for delivery_id in deliveries:
        deliver_webhook.delay(delivery_id)


def _dispatch(db: Store, audit_id: str, budget: float | None, cost: float) -> bool:
    """Send leased batches of the audit's pending calls; True while calls remain pending."""
    if budget is not None and cost >= budget:
        failed = db.fail_pending(
            audit_id, model=None, reason=f"not sent: the budget of ${budget:g} was reached"
        )
        if failed:
            db.update_audit(audit_id, budget_exhausted=True)
    pending = sum(counts.get("pending", 0) for counts in db.progress(audit_id).values())
    if not pending:
        return False
    settings = _settings().worker
    dispatchable = db.dispatchable_keys(audit_id)
    batches = []
    for keys in iter_chunks(dispatchable, settings.batch_size):
        token = new_id()
        db.lease(keys, token, settings.lease_seconds)
        batches.append(run_calls.si(audit_id, keys, token))
    if batches:
        # The last batch of a round to finish asks to advance; when nothing else is in flight
        # the count starts afresh (batches lost with a broker or worker do not hold it up).
        db.start_batches(audit_id, len(batches), reset=len(dispatchable) == pending)
        group(batches).apply_async()
    elif not app.conf.task_always_eager:
        # Every pending call is leased: to a batch still running, or to one whose worker died
        # (its heartbeat stopped, its lease runs out). A re-delivered copy of a dead batch can
        # arrive while that lease still runs and finds nothing to claim, so look again once the
        # leases can have expired rather than wait for beat's sweep. (Inline, a batch settles
        # every call it claims before this runs: nothing stays leased.)
        advance.apply_async((audit_id,), countdown=settings.lease_seconds)
    return True


@app.task(name=RUN_CALLS)
def run_calls(audit_id: str, keys: list[str], token: str) -> int:
    """Make a batch of model calls concurrently and store every outcome."""
    db = store()
    audit = db.get_audit(audit_id)
    if audit is None or audit.status not in ACTIVE_STATUSES:
        return 0
    settings = _settings().worker
    spec, base = _audit_inputs(db.url, audit_id)
    rows = db.claim(keys, token, settings.lease_seconds)
    model_failures: dict[str, str] = {}
    failed_before = {f.get("model"): f.get("reason") for f in audit.failures}
    if failed_before and rows:  # a model that failed for good in another batch: not sent
        stopped = [row for row in rows if row.model in failed_before]
        db.record_results(
            [
                CallResult(
                    key=row.key,
                    status="failed",
                    error=f"not sent: {failed_before[row.model]}",
                    attempts=0,
                )
                for row in stopped
            ]
        )
        rows = [row for row in rows if row.model not in failed_before]
    if rows:
        models = {m.display_name: m for m in spec.all_models}
        options = {item.id: len(item.options) for item in base.items}
        requests = [
            CallRequest(
                key=row.key,
                model=row.model,
                provider=models[row.model].limit_key if row.model in models else "",
                kwargs=row.request,
                api_key_env=models[row.model].api_key_env if row.model in models else None,
            )
            for row in rows
        ]
        claimed = [row.key for row in rows]

        def renew() -> None:
            db.lease(claimed, token, settings.lease_seconds, renew=True)

        responses = asyncio.run(_complete(spec, settings, requests, renew))
        by_key = {row.key: row for row in rows}
        results = []
        # the calls that met the failure first: their error is the reason, not "not sent"
        for response in sorted(responses, key=lambda r: r.attempts == 0):
            row = by_key[response.key]
            if response.ok:
                parsed = read_reply(
                    cast(CallKind, row.stage),
                    response.text,
                    response.top_logprobs,
                    options.get(row.item, 0),
                )
                results.append(
                    CallResult(
                        key=row.key,
                        status="done",
                        text=response.text,
                        parsed=parsed,
                        latency_ms=response.latency_ms,
                        prompt_tokens=response.prompt_tokens,
                        completion_tokens=response.completion_tokens,
                        cost_usd=response.cost_usd,
                        attempts=response.attempts,
                        provider_model=response.provider_model,
                    )
                )
            elif response.permanent or response.attempts > settings.max_retries:
                results.append(
                    CallResult(
                        key=row.key,
                        status="failed",
                        error=response.error,
                        attempts=response.attempts,
                    )
                )
                if response.model_failure:
                    model_failures.setdefault(row.model, response.error or "failed")
        db.record_results(results)
        spent = sum(r.cost_usd or 0.0 for r in results)
        if spent:
            db.add_cost(audit_id, spent)
        for model, reason in model_failures.items():
            db.fail_pending(audit_id, model=model, reason=f"not sent: {reason}")
        db.add_failures(audit_id, [{"model": m, "reason": r} for m, r in model_failures.items()])
    if db.finish_batch(audit_id) <= 0 or model_failures:
        advance.delay(audit_id)
    return len(rows)


async def _heartbeat(renew: Callable[[], None], interval: float) -> None:
    """Keep a running batch's lease alive, so nobody takes its calls over while it works."""
    while True:
        await asyncio.sleep(interval)
        await asyncio.to_thread(renew)


async def _complete(
    spec: AuditSpec,
    settings: WorkerSettings,
    requests: list[CallRequest],
    renew: Callable[[], None],
) -> list:
    buckets = make_buckets(
        settings.rate_limit_url or (settings.broker_url if not app.conf.task_always_eager else None)
    )
    call_limits = spec.call_limits()  # per limit key: the api_base, else the provider
    limits = {key: (lim.rpm, lim.tpm) for key, lim in call_limits.items()}
    policy = ClientPolicy(
        timeout=settings.call_timeout,
        max_retries=settings.max_retries,
        base_delay=settings.retry_base_delay,
        max_delay=settings.retry_max_delay,
        concurrency={
            key: lim.max_concurrency
            for key, lim in call_limits.items()
            if lim.max_concurrency is not None
        },
    )
    heartbeat = asyncio.create_task(_heartbeat(renew, settings.lease_seconds / 3))
    try:
        bursts = {key: lim.burst_seconds for key, lim in call_limits.items()}
        return await complete_all(requests, policy, RateLimiter(buckets, limits, bursts))
    finally:
        heartbeat.cancel()
        close = getattr(buckets, "close", None)
        if close is not None:
            await close()
