"""Tenants and API keys (the rules, the key format and the hashing are `auditor.services.keys`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from auditor.storage.store import Store
from auditor.storage.tables import ApiKeyRow, TenantRow

__all__ = ["add_key", "get_key", "list_keys", "revoke_key"]


def add_key(
    session: Session,
    *,
    key_id: str,
    tenant: str,
    name: str | None,
    key_sha256: str,
    now: datetime,
) -> ApiKeyRow:
    """Insert a key (and its tenant, if new) in the caller's transaction; returns the row."""
    if session.get(TenantRow, tenant) is None:
        session.add(TenantRow(name=tenant, created_at=now))
        session.flush()
    row = ApiKeyRow(
        id=key_id,
        tenant=tenant,
        name=name,
        key_sha256=key_sha256,
        created_at=now,
        revoked_at=None,
    )
    session.add(row)
    session.flush()
    return row


def list_keys(store: Store, *, tenant: str | None = None) -> list[ApiKeyRow]:
    """Every key (of one tenant, if given), oldest first; revoked keys included."""
    query = select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.id)
    if tenant is not None:
        query = query.where(ApiKeyRow.tenant == tenant)
    with store.session() as session:
        return list(session.scalars(query))


def revoke_key(session: Session, key_id: str, *, at: datetime) -> str | None:
    """Mark a key revoked at ``at`` in the caller's transaction; returns its tenant, or None if
    there is no such key or it was already revoked."""
    revoked = session.execute(
        update(ApiKeyRow)
        .where(ApiKeyRow.id == key_id, ApiKeyRow.revoked_at.is_(None))
        .values(revoked_at=at)
        .returning(ApiKeyRow.tenant)
    ).all()
    return str(revoked[0][0]) if revoked else None


def get_key(store: Store, key_id: str) -> ApiKeyRow | None:
    """The key with this id (revoked or not), or None."""
    with store.session() as session:
        return session.get(ApiKeyRow, key_id)
