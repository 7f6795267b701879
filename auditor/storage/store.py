"""Storage: SQLAlchemy 2 on SQLite (default) or PostgreSQL, schema managed by Alembic.

Everything an audit needs survives a crash here: the evaluations, the audits with their spec
and status, every model call keyed by what changes its output (so a stored answer is never
requested again), and the analysis results. Writes on hot paths are bulk statements.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    Table,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult, Engine, Row
from sqlalchemy.orm import Session

from auditor.schemas.bundle import Bundle, Comparison, Item, Label, ModelInfo, Output, Verdict
from auditor.schemas.canonical import canonical_sha256
from auditor.storage.tables import (
    AuditCallRow,
    AuditRow,
    Base,
    CallRow,
    EvaluationRecordRow,
    EvaluationRow,
    ItemRow,
    ModelRow,
    OutputRow,
    ResultRow,
    VerdictRow,
)
from auditor.storage.trail import append_event, audit_sha256

__all__ = [
    "Store",
    "new_id",
]

_CHUNK = 2_000
"""Rows per bulk INSERT statement (well under PostgreSQL's 65,535 bound parameters)."""


def new_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


def _rowcount(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount or 0)


@dataclass(frozen=True)
class EvaluationInfo:
    id: str
    tenant: str
    name: str | None
    created_at: datetime
    sha256: str | None
    status: str
    n_items: int
    n_models: int
    n_outputs: int
    n_verdicts: int


@dataclass(frozen=True)
class CallResult:
    """What a finished (or permanently failed) call wrote back."""

    key: str
    status: str  # "done" or "failed"
    text: str | None = None
    parsed: dict[str, Any] | None = None
    latency_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    error: str | None = None
    attempts: int = 1
    provider_model: str | None = None


@dataclass(frozen=True)
class PlannedCall:
    key: str
    stage: str
    model: str
    item: str
    candidate: str | None
    request: dict[str, Any]


def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _set_sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


class Store:
    """All reads and writes of the service. Methods are short transactions."""

    def __init__(self, url: str, *, clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self.clock = clock
        """Seconds since the epoch, for call leases (tests give a clock of their own)."""
        self.engine = make_engine(url)
        self._insert = sqlite.insert if self.engine.dialect.name == "sqlite" else postgresql.insert

    # --- schema ----------------------------------------------------------------------------

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(Path(__file__).parents[1] / "migrations"))
        config.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        config.attributes["connection"] = None
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: a session in a transaction that commits when the block ends and
        rolls back if it raises. Repository functions that take a ``session`` write in it, so
        several writes (an action and its trail entry) commit or roll back together."""
        with self.session() as session, session.begin():
            yield session

    def _insert_ignore(self, session: Session, table: Any, rows: Sequence[dict[str, Any]]) -> None:
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start : start + _CHUNK]
            if chunk:
                session.execute(self._insert(table).on_conflict_do_nothing(), chunk)

    # --- evaluations -------------------------------------------------------------------------

    def add_evaluation(self, bundle: Bundle, *, tenant: str, name: str | None = None) -> str:
        """Store a validated bundle; returns its id. All or nothing."""
        evaluation_id = new_id()
        digest = canonical_sha256(bundle.model_dump(mode="json"))
        with self.session() as session, session.begin():
            session.add(
                EvaluationRow(
                    id=evaluation_id,
                    tenant=tenant,
                    name=name,
                    created_at=utcnow(),
                    sha256=digest,
                    status="ready",
                    n_items=len(bundle.items),
                    n_models=len(bundle.models),
                    n_outputs=len(bundle.outputs),
                    n_verdicts=len(bundle.verdicts),
                )
            )
            session.flush()
            self._add_records(
                session,
                evaluation_id,
                bundle.items,
                bundle.models,
                bundle.outputs,
                bundle.verdicts,
                item_start=0,
                model_start=0,
            )
            rows = _record_rows(evaluation_id, bundle.comparisons, bundle.labels, (0, 0))
            _insert_chunks(session, _table(EvaluationRecordRow), rows)
            _trail(
                session,
                tenant=tenant,
                action="evaluation.submitted",
                object_type="evaluation",
                object_id=evaluation_id,
                object_sha256=digest,
                detail={"name": name, "n_items": len(bundle.items)},
            )
        return evaluation_id

    def _add_records(
        self,
        session: Session,
        evaluation_id: str,
        items: Sequence[Item],
        models: Sequence[ModelInfo],
        outputs: Sequence[Output],
        verdicts: Sequence[Verdict],
        *,
        item_start: int,
        model_start: int,
    ) -> None:
        table = _table(ItemRow)
        rows: list[dict[str, Any]] = [
            {
                "evaluation_id": evaluation_id,
                "item_id": i.id,
                "position": item_start + n,
                "question": i.question,
                "options": i.options,
                "gold": i.gold,
                "difficulty": i.difficulty,
                "category": i.category,
            }
            for n, i in enumerate(items)
        ]
        _insert_chunks(session, table, rows)
        rows = [
            {
                "evaluation_id": evaluation_id,
                "name": m.name,
                "position": model_start + n,
                "provider": m.provider,
                "family": m.family,
                "params": m.params,
            }
            for n, m in enumerate(models)
        ]
        _insert_chunks(session, _table(ModelRow), rows)
        rows = [
            {
                "evaluation_id": evaluation_id,
                "model": o.model,
                "item": o.item,
                "probs": o.probs,
                "choice": o.choice,
                "response": o.response,
            }
            for o in outputs
        ]
        _insert_chunks(session, _table(OutputRow), rows)
        rows = [
            {
                "evaluation_id": evaluation_id,
                "judge": v.judge,
                "candidate": v.candidate,
                "item": v.item,
                "verdict": v.verdict,
                "raw": v.raw,
            }
            for v in verdicts
        ]
        _insert_chunks(session, _table(VerdictRow), rows)

    def get_evaluation(
        self, evaluation_id: str, *, tenant: str | None = None
    ) -> EvaluationInfo | None:
        with self.session() as session:
            row = session.get(EvaluationRow, evaluation_id)
            if row is None or (tenant is not None and row.tenant != tenant):
                return None
            return _evaluation_info(row)

    def list_evaluations(
        self, *, tenant: str, limit: int = 50, offset: int = 0
    ) -> list[EvaluationInfo]:
        with self.session() as session:
            rows = session.scalars(
                select(EvaluationRow)
                .where(EvaluationRow.tenant == tenant, EvaluationRow.status == "ready")
                .order_by(EvaluationRow.created_at.desc(), EvaluationRow.id)
                .limit(limit)
                .offset(offset)
            )
            return [_evaluation_info(row) for row in rows]

    def delete_evaluation(self, evaluation_id: str, *, tenant: str) -> bool:
        with self.session() as session, session.begin():
            deleted = session.execute(
                delete(EvaluationRow)
                .where(EvaluationRow.id == evaluation_id, EvaluationRow.tenant == tenant)
                .returning(EvaluationRow.sha256)
            ).all()
            if deleted:
                _trail(
                    session,
                    tenant=tenant,
                    action="evaluation.deleted",
                    object_type="evaluation",
                    object_id=evaluation_id,
                    object_sha256=deleted[0][0],
                )
            return bool(deleted)

    def get_bundle(self, evaluation_id: str, *, tenant: str | None = None) -> Bundle:
        """The stored evaluation as a bundle (records were validated when stored)."""
        if self.get_evaluation(evaluation_id, tenant=tenant) is None:
            raise KeyError(f"evaluation {evaluation_id!r} not found")
        with self.session() as session:
            items = [
                Item.model_construct(
                    id=r.item_id,
                    question=r.question,
                    options=r.options,
                    gold=r.gold,
                    difficulty=r.difficulty,
                    category=r.category,
                )
                for r in session.scalars(
                    select(ItemRow)
                    .where(ItemRow.evaluation_id == evaluation_id)
                    .order_by(ItemRow.position)
                )
            ]
            models = [
                ModelInfo.model_construct(
                    name=r.name, provider=r.provider, family=r.family, params=r.params
                )
                for r in session.scalars(
                    select(ModelRow)
                    .where(ModelRow.evaluation_id == evaluation_id)
                    .order_by(ModelRow.position)
                )
            ]
            outputs = [
                Output.model_construct(
                    model=r.model, item=r.item, probs=r.probs, choice=r.choice, response=r.response
                )
                for r in session.execute(
                    select(
                        OutputRow.model,
                        OutputRow.item,
                        OutputRow.probs,
                        OutputRow.choice,
                        OutputRow.response,
                    )
                    .where(OutputRow.evaluation_id == evaluation_id)
                    .order_by(OutputRow.model, OutputRow.item)
                )
            ]
            verdicts = [
                Verdict.model_construct(
                    judge=r.judge, candidate=r.candidate, item=r.item, verdict=r.verdict, raw=r.raw
                )
                for r in session.execute(
                    select(
                        VerdictRow.judge,
                        VerdictRow.candidate,
                        VerdictRow.item,
                        VerdictRow.verdict,
                        VerdictRow.raw,
                    )
                    .where(VerdictRow.evaluation_id == evaluation_id)
                    .order_by(VerdictRow.judge, VerdictRow.candidate, VerdictRow.item)
                )
            ]
            records: dict[str, list[dict[str, Any]]] = {"comparison": [], "label": []}
            for kind, record in session.execute(
                select(EvaluationRecordRow.kind, EvaluationRecordRow.record)
                .where(EvaluationRecordRow.evaluation_id == evaluation_id)
                .order_by(EvaluationRecordRow.kind, EvaluationRecordRow.position)
            ):
                records[kind].append(record)
        return Bundle.model_construct(
            schema_version="1.0",
            items=items,
            models=models,
            outputs=outputs,
            verdicts=verdicts,
            comparisons=[Comparison.model_validate(r) for r in records["comparison"]],
            labels=[Label.model_validate(r) for r in records["label"]],
        )

    # --- audits ------------------------------------------------------------------------------

    def create_audit(
        self,
        spec: dict[str, Any],
        *,
        tenant: str,
        name: str,
        evaluation_id: str | None,
        budget_usd: float | None,
        idempotency_key: str | None = None,
    ) -> tuple[AuditRow, bool]:
        """Create an audit (status ``queued``); with an idempotency key already used by this
        tenant, return the existing audit instead. Returns (audit, created)."""
        if idempotency_key is not None:
            existing = self._audit_by_idempotency(tenant, idempotency_key)
            if existing is not None:
                return existing, False
        now = utcnow()
        row = AuditRow(
            id=new_id(),
            tenant=tenant,
            name=name,
            spec=spec,
            evaluation_id=evaluation_id,
            status="queued",
            stage="new",
            created_at=now,
            updated_at=now,
            finished_at=None,
            cost_usd=0.0,
            budget_usd=budget_usd,
            budget_exhausted=False,
            failures=[],
            error=None,
            idempotency_key=idempotency_key,
            batches_outstanding=0,
            wake_at=0.0,
            started_at=None,
        )
        try:
            with self.session() as session, session.begin():
                session.add(row)
        except Exception:
            if idempotency_key is not None:
                existing = self._audit_by_idempotency(tenant, idempotency_key)
                if existing is not None:  # a concurrent create with the same key won
                    return existing, False
            raise
        return row, True

    def _audit_by_idempotency(self, tenant: str, key: str) -> AuditRow | None:
        with self.session() as session:
            return session.scalars(
                select(AuditRow).where(AuditRow.tenant == tenant, AuditRow.idempotency_key == key)
            ).first()

    def get_audit(self, audit_id: str, *, tenant: str | None = None) -> AuditRow | None:
        with self.session() as session:
            row = session.get(AuditRow, audit_id)
            if row is None or (tenant is not None and row.tenant != tenant):
                return None
            return row

    def list_audits(
        self, *, tenant: str, limit: int = 50, offset: int = 0, status: str | None = None
    ) -> list[AuditRow]:
        query = select(AuditRow).where(AuditRow.tenant == tenant)
        if status is not None:
            query = query.where(AuditRow.status == status)
        with self.session() as session:
            return list(
                session.scalars(
                    query.order_by(AuditRow.created_at.desc(), AuditRow.id)
                    .limit(limit)
                    .offset(offset)
                )
            )

    def active_audits(self) -> list[AuditRow]:
        with self.session() as session:
            return list(
                session.scalars(select(AuditRow).where(AuditRow.status.in_(("queued", "running"))))
            )

    def update_audit(
        self, audit_id: str, *, expect_stage: str | None = None, **values: Any
    ) -> bool:
        """Set fields of an audit; with ``expect_stage`` only if it is still in that stage
        (a compare-and-set, so two workers cannot both advance it)."""
        query = update(AuditRow).where(AuditRow.id == audit_id)
        if expect_stage is not None:
            query = query.where(AuditRow.stage == expect_stage)
        with self.session() as session, session.begin():
            result = session.execute(query.values(updated_at=utcnow(), **values))
            return bool(_rowcount(result))

    def add_failures(self, audit_id: str, failures: list[dict[str, Any]]) -> None:
        if not failures:
            return
        with self.session() as session, session.begin():
            row = session.get(AuditRow, audit_id, with_for_update=True)
            if row is None:
                return
            known = {(f.get("model"), f.get("reason")) for f in row.failures}
            new = [f for f in failures if (f.get("model"), f.get("reason")) not in known]
            if new:
                row.failures = [*row.failures, *new]
                row.updated_at = utcnow()

    def set_wake(self, audit_id: str, at: float) -> bool:
        """Note that the audit looks again at ``at``, unless a look-again at or before then is
        already set and not yet due (a compare-and-set: True when the caller must send it)."""
        now = self.clock()
        with self.session() as session, session.begin():
            result = session.execute(
                update(AuditRow)
                .where(
                    AuditRow.id == audit_id,
                    (AuditRow.wake_at <= now) | (AuditRow.wake_at > at),
                )
                .values(wake_at=at)
            )
            return bool(_rowcount(result))

    def add_cost(self, audit_id: str, usd: float) -> float:
        """Add to an audit's running cost atomically; returns the new total."""
        with self.session() as session, session.begin():
            session.execute(
                update(AuditRow)
                .where(AuditRow.id == audit_id)
                .values(cost_usd=AuditRow.cost_usd + usd, updated_at=utcnow())
            )
            return float(
                session.scalar(select(AuditRow.cost_usd).where(AuditRow.id == audit_id)) or 0.0
            )

    # --- calls -------------------------------------------------------------------------------

    def plan_calls(self, audit_id: str, tenant: str, calls: Sequence[PlannedCall]) -> None:
        """Record the calls an audit needs; calls already stored (by key) are reused, except
        that a call which failed for another audit (out of retries at its deadline, a model
        that failed, a budget reached) is not a result: it is pending again, to be sent."""
        now = utcnow()
        with self.session() as session, session.begin():
            linked = select(AuditCallRow.key).where(AuditCallRow.audit_id == audit_id)
            keys = [c.key for c in calls]
            for start in range(0, len(keys), _CHUNK):
                session.execute(
                    update(CallRow)
                    .where(
                        CallRow.key.in_(keys[start : start + _CHUNK]),
                        CallRow.status == "failed",
                        CallRow.key.not_in(linked),
                    )
                    .values(
                        status="pending",
                        lease_token=None,
                        leased_until=0.0,
                        claimed=False,
                        updated_at=now,
                    )
                    .execution_options(synchronize_session=False)
                )
            self._insert_ignore(
                session,
                _table(CallRow),
                [
                    {
                        "key": c.key,
                        "tenant": tenant,
                        "stage": c.stage,
                        "model": c.model,
                        "item": c.item,
                        "candidate": c.candidate,
                        "request": c.request,
                        "status": "pending",
                        "attempts": 0,
                        "leased_until": 0.0,
                        "claimed": False,
                        "updated_at": now,
                    }
                    for c in calls
                ],
            )
            self._insert_ignore(
                session,
                _table(AuditCallRow),
                [{"audit_id": audit_id, "key": c.key, "stage": c.stage} for c in calls],
            )

    def dispatchable_keys(self, audit_id: str, stage: str | None = None) -> list[str]:
        """Pending calls of an audit that no live lease (nor a retry's backoff) holds, models
        interleaved (one call of each model in turn), so that a batch keeps every provider
        busy rather than one at a time."""
        query = (
            select(CallRow.model, CallRow.key)
            .join(AuditCallRow, AuditCallRow.key == CallRow.key)
            .where(
                AuditCallRow.audit_id == audit_id,
                CallRow.status == "pending",
                CallRow.leased_until < self.clock(),
            )
            .order_by(CallRow.model, CallRow.key)
        )
        if stage is not None:
            query = query.where(AuditCallRow.stage == stage)
        by_model: dict[str, list[str]] = {}
        with self.session() as session:
            for model, key in session.execute(query):
                by_model.setdefault(model, []).append(key)
        queues = list(by_model.values())
        return [
            queue[index]
            for index in range(max(map(len, queues), default=0))
            for queue in queues
            if index < len(queue)
        ]

    def next_release(self, audit_id: str) -> float | None:
        """The earliest time a pending call of the audit held by a lease or a backoff becomes
        dispatchable again (None when no pending call is held)."""
        with self.session() as session:
            value = session.scalar(
                select(func.min(CallRow.leased_until))
                .join(AuditCallRow, AuditCallRow.key == CallRow.key)
                .where(
                    AuditCallRow.audit_id == audit_id,
                    CallRow.status == "pending",
                    CallRow.leased_until >= self.clock(),
                )
            )
            return None if value is None else float(value)

    def lease(
        self, keys: Sequence[str], token: str, seconds: float, *, renew: bool = False
    ) -> list[str]:
        """Reserve pending calls that no live lease holds for one dispatch (``token``); returns
        the keys reserved (two dispatches at once never reserve the same call). With ``renew``,
        extend the lease of the calls this dispatch still holds (the heartbeat of a running
        batch)."""
        now = self.clock()
        until = now + seconds
        taken: list[str] = []
        with self.session() as session, session.begin():
            for start in range(0, len(keys), _CHUNK):
                query = update(CallRow).where(
                    CallRow.key.in_(keys[start : start + _CHUNK]), CallRow.status == "pending"
                )
                if renew:
                    query = query.where(CallRow.lease_token == token)
                    session.execute(query.values(leased_until=until))
                else:
                    taken.extend(
                        session.scalars(
                            query.where(CallRow.leased_until < now)
                            .values(lease_token=token, leased_until=until, claimed=False)
                            .returning(CallRow.key)
                            .execution_options(synchronize_session=False)
                        ).all()
                    )
        order = {key: index for index, key in enumerate(keys)}
        return sorted(taken, key=order.__getitem__)

    def claim(self, keys: Sequence[str], token: str, seconds: float) -> list[CallRow]:
        """Take the pending calls of a dispatch for one run of its task.

        A call can be claimed once per dispatch (a re-delivered copy of a task that is still
        running finds its calls claimed), or by anyone once its lease has expired (the run that
        held it died: its heartbeat stopped renewing the lease).
        """
        now = self.clock()
        with self.session() as session, session.begin():
            claimable = (CallRow.status == "pending") & (
                ((CallRow.lease_token == token) & ~CallRow.claimed) | (CallRow.leased_until < now)
            )
            claimed = session.scalars(
                update(CallRow)
                .where(CallRow.key.in_(keys), claimable)
                .values(lease_token=token, leased_until=now + seconds, claimed=True)
                .returning(CallRow.key)
                .execution_options(synchronize_session=False)
            ).all()
            if not claimed:
                return []
            return list(session.scalars(select(CallRow).where(CallRow.key.in_(claimed))))

    def record_results(self, results: Sequence[CallResult]) -> None:
        """Write finished calls in one transaction (a finished call is never overwritten)."""
        if not results:
            return
        now = utcnow()
        table = _table(CallRow)
        statement = (
            update(table)
            .where(table.c.key == bindparam("b_key"), table.c.status == "pending")
            .values(
                status=bindparam("b_status"),
                text=bindparam("b_text"),
                parsed=bindparam("b_parsed"),
                latency_ms=bindparam("b_latency_ms"),
                prompt_tokens=bindparam("b_prompt_tokens"),
                completion_tokens=bindparam("b_completion_tokens"),
                cost_usd=bindparam("b_cost_usd"),
                error=bindparam("b_error"),
                attempts=table.c.attempts + bindparam("b_attempts"),
                provider_model=bindparam("b_provider_model"),
                lease_token=None,
                leased_until=0.0,
                updated_at=now,
            )
        )
        self._update_many(
            statement, [{f"b_{name}": value for name, value in asdict(r).items()} for r in results]
        )

    def _update_many(self, statement: Any, rows: Sequence[dict[str, Any]]) -> None:
        """One UPDATE statement for many rows, in one transaction, a chunk at a time."""
        with self.engine.begin() as connection:
            for start in range(0, len(rows), _CHUNK):
                connection.execute(statement, rows[start : start + _CHUNK])

    def record_retries(self, retries: Sequence[tuple[str, str, int, float]]) -> None:
        """Calls that ran out of a batch's retries on transient errors stay pending: each of
        (key, error, attempts, not_before) keeps its last error, adds its attempts, and is not
        dispatched again before ``not_before`` (clock seconds; the backoff across batches)."""
        if not retries:
            return
        table = _table(CallRow)
        statement = (
            update(table)
            .where(table.c.key == bindparam("b_key"), table.c.status == "pending")
            .values(
                error=bindparam("b_error"),
                attempts=table.c.attempts + bindparam("b_attempts"),
                lease_token=None,
                leased_until=bindparam("b_not_before"),
                claimed=False,
                updated_at=utcnow(),
            )
        )
        self._update_many(
            statement,
            [
                {"b_key": key, "b_error": error, "b_attempts": attempts, "b_not_before": not_before}
                for key, error, attempts, not_before in retries
            ],
        )

    def model_answered(self, audit_id: str, model: str) -> bool:
        """Whether any call of ``model`` in the audit has an answer stored."""
        with self.session() as session:
            return (
                session.scalar(
                    select(CallRow.key)
                    .join(AuditCallRow, AuditCallRow.key == CallRow.key)
                    .where(
                        AuditCallRow.audit_id == audit_id,
                        CallRow.model == model,
                        CallRow.status == "done",
                    )
                    .limit(1)
                )
                is not None
            )

    def fail_pending(
        self,
        audit_id: str,
        *,
        model: str | None,
        reason: str,
        stage: str | None = None,
        skip_running: bool = False,
    ) -> int:
        """Mark an audit's pending calls (of one model, or all) as failed for ``reason``; with
        ``skip_running``, not those a running batch has claimed (it records their outcome)."""
        keys = select(AuditCallRow.key).where(AuditCallRow.audit_id == audit_id)
        if stage is not None:
            keys = keys.where(AuditCallRow.stage == stage)
        query = update(CallRow).where(CallRow.key.in_(keys), CallRow.status == "pending")
        if skip_running:
            query = query.where(~(CallRow.claimed & (CallRow.leased_until >= self.clock())))
        if model is not None:
            query = query.where(CallRow.model == model)
        with self.session() as session, session.begin():
            result = session.execute(
                query.values(
                    status="failed",
                    error=reason,
                    lease_token=None,
                    leased_until=0.0,
                    updated_at=utcnow(),
                ).execution_options(synchronize_session=False)
            )
            return _rowcount(result)

    def calls_of(
        self, audit_id: str, stage: str | None = None, status: str | None = None
    ) -> Iterator[CallRow]:
        query = (
            select(CallRow)
            .join(AuditCallRow, AuditCallRow.key == CallRow.key)
            .where(AuditCallRow.audit_id == audit_id)
        )
        if stage is not None:
            query = query.where(AuditCallRow.stage == stage)
        if status is not None:
            query = query.where(CallRow.status == status)
        with self.session() as session:
            yield from session.scalars(query.order_by(CallRow.key))

    def call_outcomes(self, audit_id: str, stage: str | None = None) -> list[Row[Any]]:
        """What the analysis reads of an audit's calls (stage, model, item, candidate, status,
        text, parsed, key, error), in key order: `calls_of` without the requests and the
        bookkeeping, which loading as objects took 2-4x as long."""
        query = (
            select(
                CallRow.stage,
                CallRow.model,
                CallRow.item,
                CallRow.candidate,
                CallRow.status,
                CallRow.text,
                CallRow.parsed,
                CallRow.key,
                CallRow.error,
            )
            .join(AuditCallRow, AuditCallRow.key == CallRow.key)
            .where(AuditCallRow.audit_id == audit_id)
        )
        if stage is not None:
            query = query.where(AuditCallRow.stage == stage)
        with self.session() as session:
            return list(session.execute(query.order_by(CallRow.key)))

    def progress(self, audit_id: str) -> dict[str, dict[str, int]]:
        """Counts of done, failed and pending calls per stage."""
        with self.session() as session:
            rows = session.execute(
                select(AuditCallRow.stage, CallRow.status, func.count())
                .join(CallRow, CallRow.key == AuditCallRow.key)
                .where(AuditCallRow.audit_id == audit_id)
                .group_by(AuditCallRow.stage, CallRow.status)
            )
            counts: dict[str, dict[str, int]] = {}
            for stage, status, count in rows:
                counts.setdefault(stage, {"done": 0, "failed": 0, "pending": 0})[status] = count
            return counts

    def call_failures(self, audit_id: str) -> dict[str, int]:
        with self.session() as session:
            rows = session.execute(
                select(AuditCallRow.stage, func.count())
                .join(CallRow, CallRow.key == AuditCallRow.key)
                .where(AuditCallRow.audit_id == audit_id, CallRow.status == "failed")
                .group_by(AuditCallRow.stage)
            )
            return {stage: count for stage, count in rows}

    # --- results -----------------------------------------------------------------------------

    def save_result(self, audit_id: str, report: dict[str, Any]) -> str:
        digest = canonical_sha256(report)
        with self.session() as session, session.begin():
            session.merge(
                ResultRow(audit_id=audit_id, report=report, sha256=digest, created_at=utcnow())
            )
        return digest

    def get_result(self, audit_id: str, *, tenant: str | None = None) -> dict[str, Any] | None:
        if self.get_audit(audit_id, tenant=tenant) is None:
            return None
        with self.session() as session:
            row = session.get(ResultRow, audit_id)
            return None if row is None else row.report

    # --- the REST API's additions ----------------------------------------------------------

    def begin_evaluation_import(self, *, tenant: str, name: str | None) -> EvaluationImport:
        """Start storing an evaluation in bounded chunks within one transaction.

        The evaluation row (status ``loading``) and every record added are invisible to other
        sessions until `EvaluationImport.commit`; `EvaluationImport.rollback` (or a crash)
        leaves nothing behind. Memory stays bounded: records go out as bulk statements.
        """
        session = self.session()
        session.begin()
        evaluation_id = new_id()
        session.add(
            EvaluationRow(
                id=evaluation_id,
                tenant=tenant,
                name=name,
                created_at=utcnow(),
                sha256=None,
                status="loading",
                n_items=0,
                n_models=0,
                n_outputs=0,
                n_verdicts=0,
            )
        )
        session.flush()
        return EvaluationImport(self, session, evaluation_id)

    def cancel_audit(self, audit_id: str, *, tenant: str) -> tuple[AuditRow | None, bool]:
        """Cancel a queued or running audit of ``tenant``; returns (audit, cancelled now).

        The stage becomes ``done`` as well, so a worker's compare-and-set on the stage cannot
        move a cancelled audit on (workers also stop taking its calls: it is no longer
        active). Calls are left as they are: they may be shared with other audits.
        """
        with self.session() as session, session.begin():
            row = session.get(AuditRow, audit_id, with_for_update=True)
            if row is None or row.tenant != tenant:
                return None, False
            if row.status not in ("queued", "running"):
                return row, False
            now = utcnow()
            row.error = f"cancelled during stage {row.stage}"
            row.status = "cancelled"
            row.stage = "done"
            row.finished_at = now
            row.updated_at = now
            _trail(
                session,
                tenant=tenant,
                action="audit.cancelled",
                object_type="audit",
                object_id=audit_id,
                object_sha256=audit_sha256(row),
                detail={"error": row.error},
            )
            return row, True

    def active_audits_of_evaluation(self, evaluation_id: str) -> list[str]:
        """Ids of the queued or running audits that read an evaluation."""
        with self.session() as session:
            return list(
                session.scalars(
                    select(AuditRow.id).where(
                        AuditRow.evaluation_id == evaluation_id,
                        AuditRow.status.in_(("queued", "running")),
                    )
                )
            )

    def ping(self) -> None:
        """One round trip to the database (raises whatever the driver raises when it is down)."""
        with self.engine.connect() as connection:
            connection.execute(select(1))

    def service_counts(self) -> ServiceCounts:
        """Audits by status and model calls by stage and status, with their cost (all
        tenants; what the metrics endpoint reports)."""
        with self.session() as session:
            audits = {
                status: (int(count), float(cost or 0.0))
                for status, count, cost in session.execute(
                    select(AuditRow.status, func.count(), func.sum(AuditRow.cost_usd)).group_by(
                        AuditRow.status
                    )
                )
            }
            calls = {
                (stage, status): (int(count), float(cost or 0.0))
                for stage, status, count, cost in session.execute(
                    select(
                        CallRow.stage, CallRow.status, func.count(), func.sum(CallRow.cost_usd)
                    ).group_by(CallRow.stage, CallRow.status)
                )
            }
        return ServiceCounts(audits=audits, calls=calls)

    def delete_all(self) -> None:
        """Testing aid: empty every table (schema kept)."""
        with self.session() as session, session.begin():
            for table in reversed(Base.metadata.sorted_tables):
                session.execute(table.delete())


def _trail(session: Session, **fields: Any) -> None:
    """Append to the audit trail inside the caller's transaction."""
    append_event(session, **fields)


def _insert_chunks(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Bulk INSERT in chunks (executemany), within the caller's transaction."""
    for start in range(0, len(rows), _CHUNK):
        session.execute(table.insert(), rows[start : start + _CHUNK])


def _evaluation_info(row: EvaluationRow) -> EvaluationInfo:
    return EvaluationInfo(
        id=row.id,
        tenant=row.tenant,
        name=row.name,
        created_at=row.created_at,
        sha256=row.sha256,
        status=row.status,
        n_items=row.n_items,
        n_models=row.n_models,
        n_outputs=row.n_outputs,
        n_verdicts=row.n_verdicts,
    )


def iter_chunks(values: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for value in values:
        chunk.append(value)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@dataclass(frozen=True)
class ServiceCounts:
    """``audits``: status -> (count, cost in USD); ``calls``: (stage, status) -> (count, cost)."""

    audits: dict[str, tuple[int, float]]
    calls: dict[tuple[str, str], tuple[int, float]]


def _record_rows(
    evaluation_id: str,
    comparisons: Sequence[Comparison],
    labels: Sequence[Label],
    start: tuple[int, int],
) -> list[dict[str, Any]]:
    """`EvaluationRecordRow` values of comparisons and labels, positions from ``start``."""
    return [
        {
            "evaluation_id": evaluation_id,
            "kind": kind,
            "position": first + n,
            "record": record.model_dump(mode="json"),
        }
        for kind, records, first in (
            ("comparison", comparisons, start[0]),
            ("label", labels, start[1]),
        )
        for n, record in enumerate(records)
    ]


class EvaluationImport:
    """An evaluation being stored chunk by chunk in one transaction (from
    `Store.begin_evaluation_import`). Not thread-safe: use it from one thread at a time."""

    def __init__(self, store: Store, session: Session, evaluation_id: str) -> None:
        self.id = evaluation_id
        self.n_items = self.n_models = self.n_outputs = self.n_verdicts = 0
        self.n_comparisons = self.n_labels = 0
        self._store = store
        self._session = session

    def add(
        self,
        *,
        items: Sequence[Item] = (),
        models: Sequence[ModelInfo] = (),
        outputs: Sequence[Output] = (),
        verdicts: Sequence[Verdict] = (),
        comparisons: Sequence[Comparison] = (),
        labels: Sequence[Label] = (),
    ) -> None:
        """Insert validated records (positions continue from the records added before).

        Millions of rows go through the driver's bulk path, inside the session's transaction:
        COPY on PostgreSQL (its executemany sends one statement per row), executemany on
        SQLite. JSON columns are written as `json.dumps` text, as the JSON type writes them.
        """
        e = self.id
        start_item, start_model = self.n_items, self.n_models
        self._bulk(
            ItemRow,
            (
                *("evaluation_id", "item_id", "position", "question"),
                *("options", "gold", "difficulty", "category"),
            ),
            [
                (
                    *(e, i.id, start_item + n, i.question, json.dumps(i.options)),
                    *(i.gold, i.difficulty, i.category),
                )
                for n, i in enumerate(items)
            ],
        )
        self._bulk(
            ModelRow,
            ("evaluation_id", "name", "position", "provider", "family", "params"),
            [
                (e, m.name, start_model + n, m.provider, m.family, m.params)
                for n, m in enumerate(models)
            ],
        )
        self._bulk(
            OutputRow,
            ("evaluation_id", "model", "item", "probs", "choice", "response"),
            [(e, o.model, o.item, json.dumps(o.probs), o.choice, o.response) for o in outputs],
        )
        self._bulk(
            VerdictRow,
            ("evaluation_id", "judge", "candidate", "item", "verdict", "raw"),
            [(e, v.judge, v.candidate, v.item, v.verdict, v.raw) for v in verdicts],
        )
        self._bulk(
            EvaluationRecordRow,
            ("evaluation_id", "kind", "position", "record"),
            [
                (r["evaluation_id"], r["kind"], r["position"], json.dumps(r["record"]))
                for r in _record_rows(e, comparisons, labels, (self.n_comparisons, self.n_labels))
            ],
        )
        self.n_items += len(items)
        self.n_models += len(models)
        self.n_outputs += len(outputs)
        self.n_verdicts += len(verdicts)
        self.n_comparisons += len(comparisons)
        self.n_labels += len(labels)

    def _bulk(
        self, model: type[Base], columns: tuple[str, ...], rows: list[tuple[Any, ...]]
    ) -> None:
        if not rows:
            return
        connection = self._session.connection()
        table = _table(model).name
        names = ", ".join(columns)
        driver: Any = connection.connection.driver_connection
        if connection.dialect.name == "postgresql":
            with (
                driver.cursor() as cursor,
                cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join("?" * len(columns))
            cursor = driver.cursor()
            try:
                cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)
            finally:
                cursor.close()

    def commit(self, *, sha256: str | None) -> EvaluationInfo:
        """Mark the evaluation ready and make it visible, all at once."""
        try:
            row = self._session.get(EvaluationRow, self.id)
            if row is None:  # pragma: no cover - the row was inserted by this transaction
                raise KeyError(self.id)
            row.status = "ready"
            row.sha256 = sha256
            row.n_items, row.n_models = self.n_items, self.n_models
            row.n_outputs, row.n_verdicts = self.n_outputs, self.n_verdicts
            _trail(
                self._session,
                tenant=row.tenant,
                action="evaluation.submitted",
                object_type="evaluation",
                object_id=row.id,
                object_sha256=sha256,
                detail={"name": row.name, "n_items": self.n_items},
            )
            self._session.commit()
            return _evaluation_info(row)
        finally:
            self._session.close()

    def rollback(self) -> None:
        """Discard everything added; nothing was ever visible."""
        try:
            self._session.rollback()
        finally:
            self._session.close()
