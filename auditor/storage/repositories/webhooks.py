"""Webhook deliveries (payloads, signing, retry timing and outcomes are
`auditor.services.notifications`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from auditor.storage.store import Store
from auditor.storage.tables import ScheduleRow, WebhookDeliveryRow

__all__ = [
    "add_delivery",
    "claim_attempt",
    "deliveries_of",
    "get_delivery",
    "lock_delivery",
    "lost_attempt_candidates",
    "pending_deliveries",
    "schedule_secret",
    "set_outcome",
]


def add_delivery(
    store: Store,
    *,
    delivery_id: str,
    tenant: str,
    schedule_id: str,
    run_id: str | None,
    event: str,
    url: str,
    body: str,
    max_attempts: int,
    now: datetime,
) -> None:
    """Store a pending delivery (no attempt made yet) in a transaction of its own."""
    with store.transaction() as session:
        session.add(
            WebhookDeliveryRow(
                id=delivery_id,
                tenant=tenant,
                schedule_id=schedule_id,
                run_id=run_id,
                event=event,
                url=url,
                body=body,
                status="pending",
                attempts=0,
                max_attempts=max_attempts,
                last_status_code=None,
                last_error=None,
                history=[],
                created_at=now,
                updated_at=now,
                delivered_at=None,
            )
        )


def deliveries_of(store: Store, schedule_id: str) -> list[WebhookDeliveryRow]:
    """A schedule's deliveries, oldest first."""
    with store.session() as session:
        return list(
            session.scalars(
                select(WebhookDeliveryRow)
                .where(WebhookDeliveryRow.schedule_id == schedule_id)
                .order_by(WebhookDeliveryRow.created_at, WebhookDeliveryRow.id)
            )
        )


def claim_attempt(
    store: Store, delivery_id: str, attempt: int, *, now: datetime
) -> WebhookDeliveryRow | None:
    """Compare-and-set the attempt count of a pending delivery from ``attempt - 1`` to
    ``attempt``; the row after the update, or None if it did not match."""
    with store.transaction() as session:
        result = session.execute(
            update(WebhookDeliveryRow)
            .where(
                WebhookDeliveryRow.id == delivery_id,
                WebhookDeliveryRow.status == "pending",
                WebhookDeliveryRow.attempts == attempt - 1,
            )
            .values(attempts=attempt, updated_at=now)
        )
        if not getattr(result, "rowcount", 0):
            return None
        return session.get(WebhookDeliveryRow, delivery_id)


def lock_delivery(session: Session, delivery_id: str) -> WebhookDeliveryRow | None:
    """The delivery, locked (``SELECT ... FOR UPDATE``) until the caller's transaction ends."""
    return session.get(WebhookDeliveryRow, delivery_id, with_for_update=True)


def set_outcome(
    row: WebhookDeliveryRow,
    *,
    history: list[dict[str, Any]],
    status: str,
    status_code: int | None,
    error: str | None,
    now: datetime,
    delivered: bool,
) -> None:
    """Write an attempt's outcome to a row locked by `lock_delivery` (flushed with the
    caller's transaction)."""
    row.history = history
    row.status = status
    row.last_status_code = status_code
    row.last_error = error
    row.updated_at = now
    if delivered:
        row.delivered_at = now


def schedule_secret(store: Store, schedule_id: str) -> str | None:
    """The webhook secret of a schedule, or None (no such schedule, or no secret)."""
    with store.session() as session:
        schedule = session.get(ScheduleRow, schedule_id)
        return schedule.webhook_secret if schedule is not None else None


def get_delivery(store: Store, delivery_id: str) -> WebhookDeliveryRow | None:
    with store.session() as session:
        return session.get(WebhookDeliveryRow, delivery_id)


def pending_deliveries(store: Store) -> list[tuple[str, int, int, datetime, datetime]]:
    """(id, attempts, max_attempts, created_at, updated_at) of every pending delivery, oldest
    first."""
    with store.session() as session:
        rows = session.execute(
            select(
                WebhookDeliveryRow.id,
                WebhookDeliveryRow.attempts,
                WebhookDeliveryRow.max_attempts,
                WebhookDeliveryRow.created_at,
                WebhookDeliveryRow.updated_at,
            )
            .where(WebhookDeliveryRow.status == "pending")
            .order_by(WebhookDeliveryRow.created_at, WebhookDeliveryRow.id)
        ).all()
    return [
        (delivery_id, attempts, max_attempts, created_at, updated_at)
        for delivery_id, attempts, max_attempts, created_at, updated_at in rows
    ]


def lost_attempt_candidates(store: Store, *, taken_before: datetime) -> list[str]:
    """Ids of pending deliveries whose every allowed attempt was taken, the last one before
    ``taken_before``."""
    with store.session() as session:
        return list(
            session.scalars(
                select(WebhookDeliveryRow.id).where(
                    WebhookDeliveryRow.status == "pending",
                    WebhookDeliveryRow.attempts >= WebhookDeliveryRow.max_attempts,
                    WebhookDeliveryRow.updated_at < taken_before,
                )
            ).all()
        )
