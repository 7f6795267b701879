"""The audit's state machine and the recording of its model calls: the business rules of a
running audit, whichever process drives it.

An audit's state lives in the database. `Pipeline.advance` looks at what is pending and moves
the audit on (new -> collect -> judge -> analyze -> done); `Pipeline.run_batch` makes one leased
batch of calls through the model client it is given and stores each reply as it arrives.
Both reach the outside world only through two ports: a `Runner` (sends batches, asks for
another advance now or later, delivers webhooks: Celery in a deployment, threads in
`auditor run`/`auditor demo`) and a `ModelClient` (the one litellm seam, in ``workers/``).

The rules:
- No stage barrier: a candidate's judge (and grader) calls are planned as soon as its answer
  is stored, and dispatched by the next advance. Pairwise comparisons, whose pairs depend on
  which answers exist, are planned when every answer call has settled.
- A transient failure (429, 5xx, timeout) that exhausts a batch's retries stays pending and is
  sent again by a later batch, after a backoff that continues the batch's own; only a
  permanent error, the spec's ``deadline_seconds`` or the budget end a call. A model that has
  never answered and whose calls cannot connect at all (refused, no such host; the model
  client does not retry those itself) is unreachable: it fails for good at the first such
  reply. One that answered before is retried by later batches (a server restarting).
- A model that fails permanently (a rejected or missing credential, an unknown model) stops at
  once: its calls not yet sent are not sent, in this batch, in batches running elsewhere
  (they check the audit's failures) and in later ones. The failure is named in the audit's
  ``failures`` (so in ``auditor status`` and the report).
- A batch that dies holds its calls only until its lease runs out; the advance that finds
  every pending call held sets a look-again for when the first hold ends, so recovery is
  bounded by the lease with or without a sweeping beat.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any, Protocol, cast

from auditor.schemas.bundle import Bundle
from auditor.schemas.spec import AuditSpec
from auditor.services.audits import ACTIVE_STATUSES, collected_answers, finalize_audit, load_base
from auditor.services.governance import audit_finished, call_scope
from auditor.services.planning import (
    CallKind,
    collect_calls,
    grade_calls,
    judge_calls,
    read_reply,
)
from auditor.settings import Settings
from auditor.storage.store import (
    AuditRow,
    CallResult,
    CallRow,
    PlannedCall,
    Store,
    iter_chunks,
    new_id,
    utcnow,
)

__all__ = [
    "COLLECT_KINDS",
    "Batch",
    "CallOrder",
    "ModelClient",
    "Pipeline",
    "Reply",
    "Runner",
    "unset_credentials",
]

log = logging.getLogger(__name__)

COLLECT_KINDS = ("mcq", "answer")
"""Kinds of call that collect the candidates' answers (the rest judge or grade them)."""


@dataclass(frozen=True)
class CallOrder:
    """One call a batch asks the model client to make (credentials are named, never held)."""

    key: str
    model: str  # display name
    provider: str  # rate-limit and concurrency key
    kwargs: dict[str, Any]
    api_key_env: str | None = None


class Reply(Protocol):
    """What the model client returns per call (`workers.llm.CallResponse`)."""

    @property
    def key(self) -> str: ...
    @property
    def ok(self) -> bool: ...
    @property
    def text(self) -> str | None: ...
    @property
    def top_logprobs(self) -> list[tuple[str, float]] | None: ...
    @property
    def latency_ms(self) -> float | None: ...
    @property
    def prompt_tokens(self) -> int | None: ...
    @property
    def completion_tokens(self) -> int | None: ...
    @property
    def cost_usd(self) -> float | None: ...
    @property
    def error(self) -> str | None: ...
    @property
    def permanent(self) -> bool: ...
    @property
    def model_failure(self) -> bool: ...
    @property
    def unreachable(self) -> bool:
        """Transient, but nothing answered at the model's address (refused, no such host)."""
        ...

    @property
    def attempts(self) -> int: ...
    @property
    def provider_model(self) -> str | None: ...


class ModelClient(Protocol):
    def __call__(
        self,
        spec: AuditSpec,
        orders: Sequence[CallOrder],
        *,
        renew: Callable[[], None],
        on_reply: Callable[[Reply], None],
        stopped: Callable[[str], str | None],
    ) -> None:
        """Make the calls concurrently; hand each reply to ``on_reply`` as it arrives; call
        ``renew`` regularly while working (the batch's heartbeat); send no call of a model
        that ``stopped`` names."""
        ...


@dataclass(frozen=True)
class Batch:
    keys: list[str]
    token: str


class Runner(Protocol):
    def send_batches(self, audit_id: str, batches: Sequence[Batch]) -> None:
        """Have each batch run (`Pipeline.run_batch`), concurrently where possible."""
        ...

    def advance_soon(self, audit_id: str) -> None:
        """Have `Pipeline.advance` run again (a batch finished)."""
        ...

    def advance_later(self, audit_id: str, delay: float) -> None:
        """Have `Pipeline.advance` run again in ``delay`` seconds."""
        ...

    def deliver(self, delivery_ids: Sequence[str]) -> None:
        """Send the webhook deliveries a finished audit created."""
        ...


def unset_credentials(spec: AuditSpec) -> list[tuple[str, str]]:
    """(model, variable) for every model whose ``api_key_env`` this process does not hold."""
    return [
        (model.display_name, model.api_key_env)
        for model in spec.all_models
        if model.api_key_env and not os.environ.get(model.api_key_env)
    ]


def _planned(calls: Sequence[Any]) -> list[PlannedCall]:
    return [PlannedCall(c.key, c.kind, c.model, c.item, c.candidate, c.request) for c in calls]


def _epoch(audit: AuditRow) -> float:
    """When the audit started running (its deadline counts from here), in clock seconds."""
    return (audit.started_at or audit.created_at).replace(tzinfo=UTC).timestamp()


@dataclass
class _Stops:
    """Models that failed for good, per audit: known at once in this process, and read from
    the audit's failures (another process's batches) at most every ``refresh`` seconds: a
    call about to be sent is checked, so staleness is what lets another process's call go
    out after the failure was stored (10 ms: at most a hundred reads of one row a second per
    process, and a batch's calls checked at once share one read)."""

    store: Store
    refresh: float = 0.01
    _known: dict[str, dict[str, str]] = field(default_factory=dict)
    _read_at: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, audit_id: str, model: str, reason: str) -> None:
        with self._lock:
            self._known.setdefault(audit_id, {}).setdefault(model, reason)

    def reason(self, audit_id: str, model: str) -> str | None:
        now = time.monotonic()
        with self._lock:
            due = now - self._read_at.get(audit_id, -self.refresh) >= self.refresh
            if due:
                self._read_at[audit_id] = now
        if due:
            audit = self.store.get_audit(audit_id)
            for failure in audit.failures if audit is not None else []:
                if failure.get("model") is not None:
                    self.add(audit_id, str(failure["model"]), str(failure.get("reason")))
        with self._lock:
            return self._known.get(audit_id, {}).get(model)


class Pipeline:
    """The state machine of audits on one store, driven through a runner and a model client."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        runner: Runner,
        client: ModelClient,
        *,
        inputs: Callable[[Store, AuditRow], tuple[AuditSpec, Bundle]] = load_base,
    ) -> None:
        self.store = store
        self.settings = settings
        self.runner = runner
        self.client = client
        self.inputs = inputs
        self.stops = _Stops(store)

    # --- the state machine ---------------------------------------------------------------

    def sweep(self) -> int:
        """Nudge every active audit (re-dispatches work whose messages or workers were lost)."""
        audits = self.store.active_audits()
        for audit in audits:
            self.runner.advance_soon(audit.id)
        return len(audits)

    def advance(self, audit_id: str) -> None:
        db = self.store
        audit = db.get_audit(audit_id)
        if audit is None or audit.status not in ACTIVE_STATUSES:
            return
        spec, base = self.inputs(db, audit)
        if audit.stage == "new":
            scope = call_scope(db, audit)  # a scheduled run asks the providers afresh
            answers = collected_answers(db, audit_id, base)  # the base bundle's own answers
            db.plan_calls(
                audit_id,
                audit.tenant,
                _planned(
                    collect_calls(spec, scope, base)
                    + judge_calls(spec, scope, base, answers, pairwise=False)
                    + grade_calls(spec, scope, base, answers)
                ),
            )
            self._fail_models_without_credentials(audit_id, spec)
            db.update_audit(
                audit_id, expect_stage="new", stage="collect", status="running", started_at=utcnow()
            )
            audit = db.get_audit(audit_id)
            assert audit is not None
        if audit.stage in ("collect", "judge"):
            self._end_calls_past_deadline(audit, spec)
            self._stop_at_budget(audit)
            progress = db.progress(audit_id)
            collecting = any(progress.get(kind, {}).get("pending", 0) for kind in COLLECT_KINDS)
            if audit.stage == "collect" and not collecting:
                # every answer settled: plan what needs all of them (the pairwise comparisons),
                # and anything a batch that died between storing and planning left unplanned
                scope = call_scope(db, audit)
                answers = collected_answers(db, audit_id, base)
                db.plan_calls(
                    audit_id,
                    audit.tenant,
                    _planned(
                        judge_calls(spec, scope, base, answers)
                        + grade_calls(spec, scope, base, answers)
                    ),
                )
                if not db.update_audit(audit_id, expect_stage="collect", stage="judge"):
                    return  # another worker advanced it
                audit = db.get_audit(audit_id)
                assert audit is not None
                progress = db.progress(audit_id)
            if self._dispatch(audit_id, progress):
                return
            if not db.update_audit(audit_id, expect_stage=audit.stage, stage="analyze"):
                return
        audit = db.get_audit(audit_id)
        if audit is None or audit.stage != "analyze":
            return
        self._analyze(audit)

    def _dispatch(self, audit_id: str, progress: dict[str, dict[str, int]]) -> bool:
        """Send leased batches of the audit's dispatchable calls; True while calls remain
        pending (then, if none could be sent, a look-again when the first hold ends)."""
        db = self.store
        if not sum(counts.get("pending", 0) for counts in progress.values()):
            return False
        worker = self.settings.worker
        batches = []
        for keys in iter_chunks(db.dispatchable_keys(audit_id), worker.batch_size):
            token = new_id()
            leased = db.lease(keys, token, worker.lease_seconds)
            if leased:
                batches.append(Batch(leased, token))
        if batches:
            self.runner.send_batches(audit_id, batches)
            return True
        # Every pending call is held: by a running batch (which asks to advance when it ends),
        # by a retry's backoff, or by a batch whose worker died (its lease runs out).
        release = db.next_release(audit_id)
        if release is None:  # released meanwhile
            self.runner.advance_soon(audit_id)
            return True
        at = release + 0.05
        if db.set_wake(audit_id, at):
            self.runner.advance_later(audit_id, max(0.0, at - db.clock()))
        return True

    def _analyze(self, audit: AuditRow) -> None:
        db = self.store
        try:
            finalize_audit(db, audit, drift_bootstrap=self.settings.drift.bootstrap)
        except Exception as error:  # recorded on the audit: a failed analysis is a result too
            log.exception("analysis of audit %s failed", audit.id)
            if db.update_audit(
                audit.id,
                expect_stage="analyze",
                stage="done",
                status="failed",
                error=f"analysis failed: {type(error).__name__}: {error}",
                finished_at=utcnow(),
            ):
                self._finished(audit.id)
            return
        if db.update_audit(
            audit.id, expect_stage="analyze", stage="done", status="succeeded", finished_at=utcnow()
        ):
            self._finished(audit.id)

    def _finished(self, audit_id: str) -> None:
        """The final status is set (by this process alone): the audit trail's entry and, for
        a scheduled run, its notifications. Neither may undo the audit's result."""
        try:
            deliveries = audit_finished(self.store, audit_id, webhook=self.settings.webhook)
        except Exception:
            log.exception("recording the end of audit %s failed", audit_id)
            return
        if deliveries:
            self.runner.deliver(deliveries)

    def _fail_models_without_credentials(self, audit_id: str, spec: AuditSpec) -> None:
        """Before anything is sent: a model whose ``api_key_env`` this process does not hold
        fails for good, by name, and none of its calls is made."""
        failures = []
        for model, variable in unset_credentials(spec):
            reason = f"environment variable {variable} is not set (api_key_env)"
            self.store.fail_pending(audit_id, model=model, reason=f"not sent: {reason}")
            failures.append({"model": model, "reason": reason})
        self.store.add_failures(audit_id, failures)

    def _stop_at_budget(self, audit: AuditRow) -> None:
        budget = audit.budget_usd
        if budget is not None and audit.cost_usd >= budget:
            failed = self.store.fail_pending(
                audit.id, model=None, reason=f"not sent: the budget of ${budget:g} was reached"
            )
            if failed:
                self.store.update_audit(audit.id, budget_exhausted=True)

    def deadline(self, spec: AuditSpec) -> float | None:
        """Seconds of running after which transient failures are given up: the spec's own,
        else the deployment's default (`WorkerSettings.default_deadline_seconds`)."""
        if spec.deadline_seconds is not None:
            return spec.deadline_seconds
        return self.settings.worker.default_deadline_seconds

    def _past_deadline(self, audit: AuditRow, spec: AuditSpec) -> bool:
        deadline = self.deadline(spec)
        return deadline is not None and self.store.clock() >= _epoch(audit) + deadline

    def _end_calls_past_deadline(self, audit: AuditRow, spec: AuditSpec) -> None:
        """At the deadline every pending call ends: those that were failing say so (with
        their last error, per model in the audit's failures), the rest were not sent."""
        if not self._past_deadline(audit, spec):
            return
        db = self.store
        retrying = [row for row in db.calls_of(audit.id, status="pending") if row.error]
        results = []
        last_error: dict[str, tuple[int, str]] = {}
        for row in retrying:
            results.append(
                CallResult(
                    key=row.key,
                    status="failed",
                    error=f"gave up at the deadline after {row.attempts} attempts: {row.error}",
                    attempts=0,
                )
            )
            count, _ = last_error.get(row.model, (0, ""))
            last_error[row.model] = (count + 1, (row.error or "").removeprefix("retrying: "))
        db.record_results(results)
        db.fail_pending(
            audit.id,
            model=None,
            reason=f"not sent: the audit's deadline of {self.deadline(spec):g} s passed",
        )
        db.add_failures(
            audit.id,
            [
                {
                    "model": model,
                    "reason": f"{count} calls ran out of retries before the deadline "
                    f"({self.deadline(spec):g} s); last error: {error}",
                }
                for model, (count, error) in sorted(last_error.items())
            ],
        )

    # --- a batch of calls ----------------------------------------------------------------

    def run_batch(self, audit_id: str, keys: Sequence[str], token: str) -> int:
        """Make a batch of model calls concurrently, storing every outcome as it arrives,
        then ask to advance. Returns how many calls this run claimed."""
        db = self.store
        audit = db.get_audit(audit_id)
        if audit is None or audit.status not in ACTIVE_STATUSES:
            return 0
        worker = self.settings.worker
        spec, base = self.inputs(db, audit)
        rows = db.claim(keys, token, worker.lease_seconds)
        recorder = _Recorder(self, audit, spec, base, rows)
        stopped = [row for row in rows if self.stops.reason(audit_id, row.model) is not None]
        recorder.not_sent(stopped)
        rows = [row for row in rows if self.stops.reason(audit_id, row.model) is None]
        if rows:
            models = {m.display_name: m for m in spec.all_models}
            orders = [
                CallOrder(
                    key=row.key,
                    model=row.model,
                    provider=spec.limit_key(models[row.model]) if row.model in models else "",
                    kwargs=row.request,
                    api_key_env=models[row.model].api_key_env if row.model in models else None,
                )
                for row in rows
            ]
            claimed = [row.key for row in rows]

            def renew() -> None:
                db.lease(claimed, token, worker.lease_seconds, renew=True)

            try:
                self.client(
                    spec,
                    orders,
                    renew=renew,
                    on_reply=recorder.add,
                    stopped=lambda model: self.stops.reason(audit_id, model),
                )
            finally:
                recorder.close()
        else:
            recorder.close()
        self.runner.advance_soon(audit_id)
        return len(rows) + len(stopped)


class _Recorder:
    """Turns a batch's replies into stored outcomes as they arrive: a writer thread stores
    whatever replies are waiting, one transaction at a time (a group commit), so a reply waits
    at most for the write before it, and the event loop making the calls never waits for the
    database. A batch killed mid-way loses only the replies of the write in progress."""

    def __init__(
        self,
        pipeline: Pipeline,
        audit: AuditRow,
        spec: AuditSpec,
        base: Bundle,
        rows: Sequence[CallRow],
    ) -> None:
        self.pipeline = pipeline
        self.store = pipeline.store
        self.audit = audit
        self.spec = spec
        self.base = base
        self.rows = {row.key: row for row in rows}
        self.options = {item.id: len(item.options) for item in base.items}
        self.results: list[CallResult] = []
        self.retries: list[tuple[str, str, int, float]] = []
        self.answers: dict[tuple[str, str], str] = {}
        self.answered: dict[str, bool] = {}
        self.lock = threading.Lock()
        self._waiting = threading.Condition(self.lock)
        self._closed = False
        self._failure: BaseException | None = None
        self._scope: str | None = None
        self._writer = threading.Thread(
            target=self._write_loop, name=f"auditor-recorder-{audit.id[:8]}", daemon=True
        )
        self._writer.start()

    def not_sent(self, rows: Sequence[CallRow]) -> None:
        stops = self.pipeline.stops
        self.store.record_results(
            [
                CallResult(
                    key=row.key,
                    status="failed",
                    error=f"not sent: {stops.reason(self.audit.id, row.model)}",
                    attempts=0,
                )
                for row in rows
            ]
        )

    def add(self, reply: Reply) -> None:
        row = self.rows[reply.key]
        with self.lock:
            if reply.ok:
                self._done(row, reply)
            elif reply.permanent:
                self._failed(row, reply)
            else:
                self._transient(row, reply)
            self._waiting.notify()

    def _write_loop(self) -> None:
        while True:
            with self.lock:
                while not (self.results or self.retries or self._closed):
                    self._waiting.wait()
                results, self.results = self.results, []
                retries, self.retries = self.retries, []
                answers, self.answers = self.answers, {}
                last = self._closed
            try:
                self._write(results, retries, answers)
            except BaseException as error:  # raised by close(), in the batch's own thread
                self._failure = error
                return
            if last:
                return

    def close(self) -> None:
        """Store every reply still waiting, then stop the writer (re-raising its failure)."""
        with self.lock:
            self._closed = True
            self._waiting.notify()
        self._writer.join()
        if self._failure is not None:
            raise self._failure

    def _done(self, row: CallRow, reply: Reply) -> None:
        parsed = read_reply(
            cast(CallKind, row.stage),
            reply.text,
            reply.top_logprobs,
            self.options.get(row.item, 0),
        )
        self.results.append(
            CallResult(
                key=row.key,
                status="done",
                text=reply.text,
                parsed=parsed,
                latency_ms=reply.latency_ms,
                prompt_tokens=reply.prompt_tokens,
                completion_tokens=reply.completion_tokens,
                cost_usd=reply.cost_usd,
                attempts=reply.attempts,
                provider_model=reply.provider_model,
            )
        )
        self.answered[row.model] = True
        if row.stage == "answer" and parsed and parsed.get("response") is not None:
            self.answers[(row.model, row.item)] = parsed["response"]

    def _failed(self, row: CallRow, reply: Reply) -> None:
        result = CallResult(
            key=row.key, status="failed", error=reply.error, attempts=reply.attempts
        )
        if reply.model_failure and not (reply.error or "").startswith("not sent:"):
            # the call that met the model's failure: its error is the reason
            self._stop_model(row.model, reply.error or "failed", result)
        else:
            self.results.append(result)

    def _stop_model(self, model: str, reason: str, result: CallResult) -> None:
        """The model cannot be called: none of its calls still pending is sent, anywhere."""
        audit_id = self.audit.id
        self.store.record_results([result])
        if self.pipeline.stops.reason(audit_id, model) is not None:
            return
        self.pipeline.stops.add(audit_id, model, reason)
        self.store.add_failures(audit_id, [{"model": model, "reason": reason}])
        # the model's calls that running batches hold: each batch records what became of them
        unsent = self.store.fail_pending(
            audit_id, model=model, reason=f"not sent: {reason}", skip_running=True
        )
        log.info("model %s failed for good (%d calls not sent): %s", model, unsent, reason)

    def _transient(self, row: CallRow, reply: Reply) -> None:
        error = reply.error or "transient failure"
        pipeline = self.pipeline
        if pipeline._past_deadline(self.audit, self.spec):
            self.results.append(
                CallResult(
                    key=row.key,
                    status="failed",
                    error=f"gave up at the deadline after {reply.attempts} attempts: {error}",
                    attempts=reply.attempts,
                )
            )
            self.store.add_failures(
                self.audit.id,
                [
                    {
                        "model": row.model,
                        "reason": f"calls ran out of retries before the deadline "
                        f"({pipeline.deadline(self.spec):g} s); last error: {error}",
                    }
                ],
            )
            return
        if reply.unreachable and not self._has_answered(row.model):
            reason = f"unreachable (it never answered): {error}"
            result = CallResult(key=row.key, status="failed", error=reason, attempts=reply.attempts)
            self._stop_model(row.model, reason, result)
            return
        worker = pipeline.settings.worker
        # the backoff continues the batch's own: the next doubling, capped
        exponent = (row.attempts or 0) + reply.attempts
        delay = min(worker.retry_max_delay, worker.retry_base_delay * 2.0 ** min(exponent, 30))
        self.retries.append(
            (row.key, f"retrying: {error}", reply.attempts, self.store.clock() + delay)
        )

    def _has_answered(self, model: str) -> bool:
        if model not in self.answered:
            self.answered[model] = self.store.model_answered(self.audit.id, model)
        return self.answered[model]

    def _write(
        self,
        results: list[CallResult],
        retries: list[tuple[str, str, int, float]],
        answers: dict[tuple[str, str], str],
    ) -> None:
        store = self.store
        store.record_results(results)
        store.record_retries(retries)
        spent = sum(r.cost_usd or 0.0 for r in results)
        if spent:
            store.add_cost(self.audit.id, spent)
        if answers:  # no stage barrier: these answers' judge and grader calls, planned now
            if self._scope is None:
                self._scope = call_scope(store, self.audit)
            spec, base, scope = self.spec, self.base, self._scope
            store.plan_calls(
                self.audit.id,
                self.audit.tenant,
                _planned(
                    judge_calls(spec, scope, base, answers, pairwise=False)
                    + grade_calls(spec, scope, base, answers)
                ),
            )
