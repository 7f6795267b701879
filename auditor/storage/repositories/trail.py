"""Reading and appending the audit trail (the chain's recipe and its verification are
`auditor.services.trail`; the in-transaction append is `auditor.storage.trail.append_event`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from auditor.schemas.trail import EventRecord
from auditor.storage.store import Store
from auditor.storage.tables import ResultRow, TrailEventRow, TrailHeadRow
from auditor.storage.trail import HEAD_ID, append_event, calls_sha256

__all__ = ["finished_audit", "head", "list_events", "record_event", "stored_result"]


def record_event(store: Store, **fields: Any) -> EventRecord:
    """Append an entry in a transaction of its own (see `append_event` for the fields)."""
    with store.transaction() as session:
        return append_event(session, **fields)


def list_events(
    store: Store,
    *,
    tenant: str | None,
    limit: int,
    after: int,
    action: str | None = None,
    object_id: str | None = None,
) -> list[TrailEventRow]:
    """Rows with ``seq > after`` in sequence order, at most ``limit`` (a tenant's, or all with
    ``tenant=None``; filtered by action and object id when given)."""
    query = select(TrailEventRow).where(TrailEventRow.seq > after)
    if tenant is not None:
        query = query.where(TrailEventRow.tenant == tenant)
    if action is not None:
        query = query.where(TrailEventRow.action == action)
    if object_id is not None:
        query = query.where(TrailEventRow.object_id == object_id)
    with store.session() as session:
        return list(session.scalars(query.order_by(TrailEventRow.seq).limit(limit)))


def head(store: Store) -> tuple[int, str] | None:
    """The chain head: (last sequence number, last hash), or None if there is no head row."""
    with store.session() as session:
        row = session.get(TrailHeadRow, HEAD_ID)
        return None if row is None else (row.seq, row.hash)


def stored_result(store: Store, audit_id: str) -> ResultRow | None:
    """The stored result of an audit, or None."""
    with store.session() as session:
        return session.get(ResultRow, audit_id)


def finished_audit(
    store: Store, audit_id: str, *, cutoff: datetime
) -> tuple[ResultRow | None, tuple[str, int]]:
    """The stored result of an audit (or None) and the SHA-256 and count of its finished calls
    as stored at ``cutoff`` (`calls_sha256`), read in one session."""
    with store.session() as session:
        result = session.get(ResultRow, audit_id)
        return result, calls_sha256(session, audit_id, cutoff=cutoff)
