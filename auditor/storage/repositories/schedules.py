"""Schedules, their runs and their webhook deliveries (the rules are `auditor.services.schedules`,
`auditor.services.governance` and `auditor.services.notifications`)."""

from __future__ import annotations

from sqlalchemy import select

from auditor.storage.store import Store
from auditor.storage.tables import AuditRow, ScheduleRow, ScheduleRunRow

__all__ = ["get_schedule", "succeeded_runs_before"]


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
