"""The stored signing key (key handling and signatures are `auditor.services.signing`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from auditor.storage.store import Store
from auditor.storage.tables import SigningKeyRow

__all__ = ["add_key_if_absent", "find_private_pem", "private_pem"]


def find_private_pem(store: Store, name: str) -> str | None:
    """The private key (PEM) stored under ``name``, or None."""
    with store.session() as session:
        row = session.get(SigningKeyRow, name)
        return None if row is None else row.private_pem


def private_pem(store: Store, name: str) -> str:
    """The private key (PEM) stored under ``name``; `sqlalchemy.exc.NoResultFound` if none."""
    with store.session() as session:
        return (
            session.scalars(select(SigningKeyRow).where(SigningKeyRow.name == name))
            .one()
            .private_pem
        )


def add_key_if_absent(
    store: Store, *, name: str, key_id: str, private_pem: str, created_at: datetime
) -> bool:
    """Store a key under ``name`` in a transaction of its own; False if a key was stored under
    that name first (by another process)."""
    try:
        with store.transaction() as session:
            session.add(
                SigningKeyRow(
                    name=name, key_id=key_id, private_pem=private_pem, created_at=created_at
                )
            )
    except IntegrityError:
        return False
    return True
