"""The audit trail's tables and its append, inside the caller's transaction (storage writes its
own entries this way: an evaluation stored, an audit cancelled). Reading and verifying the chain
is `auditor.services.trail`; the chain's recipe is documented there."""

from __future__ import annotations

import contextlib
import contextvars
import getpass
import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from auditor.schemas.canonical import canonical_json, canonical_sha256
from auditor.schemas.trail import TRAIL_SCHEMA_VERSION, EventRecord
from auditor.storage.tables import AuditCallRow, CallRow, TrailEventRow, TrailHeadRow

__all__ = [
    "GENESIS_HASH",
    "HEAD_ID",
    "acting_as",
    "append_event",
    "audit_sha256",
    "bind_actor",
    "calls_sha256",
    "cli_actor",
    "current_actor",
    "entry_hash",
    "reset_actor",
    "set_default_actor",
]

GENESIS_HASH: Final = "0" * 64
HEAD_ID: Final = 1


# --- who is acting ------------------------------------------------------------------------------

_actor: contextvars.ContextVar[str | None] = contextvars.ContextVar("trail_actor", default=None)
_default_actor = "system"


def set_default_actor(actor: str) -> None:
    """The actor of this process when none is bound (the CLI sets ``cli:<user>``)."""
    global _default_actor
    _default_actor = actor


def cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name (containers without a passwd entry)
        return "cli:unknown"


def current_actor() -> str:
    """The actor bound to this context (an API request binds its key id), else the default."""
    return _actor.get() or _default_actor


@contextlib.contextmanager
def acting_as(actor: str) -> Iterator[str]:
    """``with acting_as("key:abc"): ...`` binds the actor of the events recorded inside."""
    token = _actor.set(actor)
    try:
        yield actor
    finally:
        _actor.reset(token)


def bind_actor(actor: str | None) -> contextvars.Token[str | None]:
    """Bind ``actor`` for the rest of this context; returns the token to reset it."""
    return _actor.set(actor)


def reset_actor(token: contextvars.Token[str | None]) -> None:
    _actor.reset(token)


# --- hashing ------------------------------------------------------------------------------------


def entry_hash(entry: dict[str, Any] | EventRecord) -> str:
    """SHA-256 (hex) of an entry's content: every field except ``hash`` itself."""
    document = entry.model_dump() if isinstance(entry, EventRecord) else dict(entry)
    document.pop("hash", None)
    return canonical_sha256(document)


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def audit_sha256(audit: Any) -> str:
    """SHA-256 of what defines an audit (an `AuditRow`): id, tenant, spec and evaluation."""
    return canonical_sha256(
        {
            "id": audit.id,
            "tenant": audit.tenant,
            "spec": audit.spec,
            "evaluation_id": audit.evaluation_id,
        }
    )


CALL_FIELDS: Final = (
    "key",
    "tenant",
    "stage",
    "model",
    "item",
    "candidate",
    "request",
    "status",
    "text",
    "parsed",
    "error",
    "provider_model",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
)
"""What `calls_sha256` covers of a call row: what was asked and what came back (not the
lease, attempt and timing bookkeeping)."""


def calls_sha256(session: Session, audit_id: str, *, cutoff: datetime) -> tuple[str, int]:
    """SHA-256 and count of an audit's finished calls, as stored at ``cutoff`` (naive UTC).

    Covers every call linked to the audit whose status is ``done`` and that was written at or
    before ``cutoff``, in key order: SHA-256 over the lines ``canonical JSON of {CALL_FIELDS}``
    (one line per call, ``\\n``-terminated). A finished call is never written again, so the
    digest stays what it was when the audit finished; a call that failed then and succeeds in
    a later run is written after ``cutoff`` and stays out. Editing a covered reply, or moving
    a covered call out (its status, its time), changes the digest."""
    columns = [getattr(CallRow, name) for name in CALL_FIELDS]
    query = (
        select(*columns)
        .join(AuditCallRow, AuditCallRow.key == CallRow.key)
        .where(
            AuditCallRow.audit_id == audit_id,
            CallRow.status == "done",
            CallRow.updated_at <= cutoff,
        )
        .order_by(CallRow.key)
        .execution_options(yield_per=2_000)
    )
    digest = hashlib.sha256()
    count = 0
    for row in session.execute(query):
        document = dict(zip(CALL_FIELDS, row, strict=True))
        digest.update(canonical_json(document) + b"\n")
        count += 1
    return digest.hexdigest(), count


# --- appending ----------------------------------------------------------------------------------


def append_event(
    session: Session,
    *,
    tenant: str,
    action: str,
    object_type: str,
    object_id: str,
    object_sha256: str | None = None,
    detail: dict[str, Any] | None = None,
    actor: str | None = None,
) -> EventRecord:
    """Append an entry inside the caller's open transaction (it commits or rolls back with
    the action it records). The caller must commit."""
    head = session.execute(
        update(TrailHeadRow)
        .where(TrailHeadRow.id == HEAD_ID)
        .values(seq=TrailHeadRow.seq + 1)
        .returning(TrailHeadRow.seq, TrailHeadRow.hash)
    ).one_or_none()
    if head is None:
        raise RuntimeError("the audit trail has no head row: run the migrations (revision 0003)")
    seq, prev_hash = int(head[0]), str(head[1])
    content: dict[str, Any] = {
        "schema_version": TRAIL_SCHEMA_VERSION,
        "seq": seq,
        "at": _now_iso(),
        "tenant": tenant,
        "actor": actor or current_actor(),
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "object_sha256": object_sha256,
        "detail": json.loads(canonical_json(detail or {})),  # JSON-safe, as it will read back
        "prev_hash": prev_hash,
    }
    digest = entry_hash(content)
    session.add(TrailEventRow(**content, hash=digest))
    session.execute(update(TrailHeadRow).where(TrailHeadRow.id == HEAD_ID).values(hash=digest))
    session.flush()
    return EventRecord(**content, hash=digest)
