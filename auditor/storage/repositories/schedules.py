"""Schedules, their runs and their webhook deliveries (the rules are `auditor.services.schedules`,
`auditor.services.governance` and `auditor.services.notifications`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from auditor.storage.store import Store, new_id, utcnow
from auditor.storage.tables import AuditRow, ScheduleRow, ScheduleRunRow

__all__ = [
    "add_schedule",
    "audit_status",
    "claim_slot",
    "due_schedules",
    "get_run",
    "get_schedule",
    "list_schedules",
    "lock_schedule",
    "run_of_audit",
    "runs_of",
    "succeeded_runs_before",
    "unstarted_runs",
    "update_locked",
    "update_run",
]


def get_schedule(store: Store, schedule_id: str) -> ScheduleRow | None:
    """The schedule with this id (any tenant), or None."""
    with store.session() as session:
        return session.get(ScheduleRow, schedule_id)


def succeeded_runs_before(store: Store, run: ScheduleRunRow) -> list[ScheduleRunRow]:
    """Earlier runs of the schedule of ``run`` whose audit succeeded, oldest first."""
    with store.session() as session:
        rows = session.execute(
            select(ScheduleRunRow)
            .join(AuditRow, AuditRow.id == ScheduleRunRow.audit_id)
            .where(
                ScheduleRunRow.schedule_id == run.schedule_id,
                ScheduleRunRow.claimed_at < run.claimed_at,
                AuditRow.status == "succeeded",
            )
            .order_by(ScheduleRunRow.claimed_at, ScheduleRunRow.id)
        ).scalars()
        return list(rows)


def add_schedule(session: Session, row: ScheduleRow) -> None:
    """Insert a schedule in the caller's transaction (flushed, so its trail entry follows)."""
    session.add(row)
    session.flush()


def list_schedules(
    store: Store, *, tenant: str | None, limit: int, offset: int
) -> list[ScheduleRow]:
    """Schedules not deleted (a tenant's, or all with ``tenant=None``), oldest first."""
    query = select(ScheduleRow).where(ScheduleRow.deleted_at.is_(None))
    if tenant is not None:
        query = query.where(ScheduleRow.tenant == tenant)
    with store.session() as session:
        return list(
            session.scalars(
                query.order_by(ScheduleRow.created_at, ScheduleRow.id).limit(limit).offset(offset)
            )
        )


def lock_schedule(session: Session, schedule_id: str) -> ScheduleRow | None:
    """The schedule, locked (``SELECT ... FOR UPDATE``) until the caller's transaction ends."""
    return session.get(ScheduleRow, schedule_id, with_for_update=True)


def update_locked(session: Session, row: ScheduleRow, values: dict[str, Any]) -> None:
    """Set columns of a schedule locked by `lock_schedule` and flush them (in order, so a
    trail entry appended next sees the new values)."""
    for name, value in values.items():
        setattr(row, name, value)
    session.flush()


def runs_of(
    store: Store, schedule_id: str, *, limit: int, newest_first: bool
) -> list[ScheduleRunRow]:
    """A schedule's runs by claim time (oldest or newest first), at most ``limit``."""
    order = ScheduleRunRow.claimed_at.desc() if newest_first else ScheduleRunRow.claimed_at
    with store.session() as session:
        return list(
            session.scalars(
                select(ScheduleRunRow)
                .where(ScheduleRunRow.schedule_id == schedule_id)
                .order_by(order, ScheduleRunRow.id)
                .limit(limit)
            )
        )


def run_of_audit(store: Store, audit_id: str) -> ScheduleRunRow | None:
    """The run that started this audit, or None."""
    with store.session() as session:
        return session.scalars(
            select(ScheduleRunRow).where(ScheduleRunRow.audit_id == audit_id)
        ).first()


def audit_status(store: Store, audit_id: str) -> str | None:
    """The status of an audit, or None if there is no such audit."""
    with store.session() as session:
        audit = session.get(AuditRow, audit_id)
        return None if audit is None else audit.status


def due_schedules(store: Store, *, now: datetime) -> list[ScheduleRow]:
    """Schedules not deleted nor paused whose next slot is at or before ``now``."""
    with store.session() as session:
        return list(
            session.scalars(
                select(ScheduleRow).where(
                    ScheduleRow.deleted_at.is_(None),
                    ScheduleRow.paused.is_(False),
                    ScheduleRow.next_due_at <= now,
                )
            )
        )


def claim_slot(
    store: Store,
    schedule: ScheduleRow,
    *,
    slot: datetime,
    next_due_at: datetime,
    missed_slots: int,
) -> ScheduleRunRow | None:
    """In one transaction: compare-and-set the schedule's version (still unpaused and not
    deleted) while moving it to its next slot, and insert the claimed run of ``slot``. None if
    the schedule changed or was claimed by someone else since it was read."""
    with store.transaction() as session:
        result = session.execute(
            update(ScheduleRow)
            .where(
                ScheduleRow.id == schedule.id,
                ScheduleRow.version == schedule.version,
                ScheduleRow.paused.is_(False),
                ScheduleRow.deleted_at.is_(None),
            )
            .values(
                version=ScheduleRow.version + 1,
                next_due_at=next_due_at,
                last_slot_at=slot,
            )
            .execution_options(synchronize_session=False)
        )
        if not getattr(result, "rowcount", 0):
            return None
        run = ScheduleRunRow(
            id=new_id(),
            schedule_id=schedule.id,
            tenant=schedule.tenant,
            slot_at=slot,
            missed_slots=missed_slots,
            claimed_at=utcnow(),
            state="claimed",
            spec=schedule.spec,
            audit_id=None,
            pins=None,
            drift=None,
            error=None,
        )
        session.add(run)
    return run


def unstarted_runs(store: Store, *, claimed_before: datetime) -> list[ScheduleRunRow]:
    """Runs still ``claimed`` (no audit created) that were claimed at or before the time."""
    with store.session() as session:
        return list(
            session.scalars(
                select(ScheduleRunRow).where(
                    ScheduleRunRow.state == "claimed", ScheduleRunRow.claimed_at <= claimed_before
                )
            )
        )


def update_run(store: Store, run_id: str, **values: Any) -> None:
    """Set columns of a run in a transaction of its own."""
    with store.transaction() as session:
        session.execute(update(ScheduleRunRow).where(ScheduleRunRow.id == run_id).values(**values))


def get_run(store: Store, run_id: str) -> ScheduleRunRow | None:
    with store.session() as session:
        return session.get(ScheduleRunRow, run_id)
