"""The audit trail: an append-only event log whose entries are chained by SHA-256.

Every action on the service (an API key created or revoked, an evaluation submitted or
deleted, an audit started, finished or cancelled, a schedule changed, a report rendered) is
appended as one entry: who did it (the API key id, ``cli:<user>`` or ``system:<part>``), for
which tenant, when, to which object, and the SHA-256 of that object. Each entry also holds the
hash of the entry before it, and its own hash covers all of that::

    hash_n = SHA-256( canonical JSON of {schema_version, seq, at, tenant, actor, action,
                                         object_type, object_id, object_sha256, detail,
                                         prev_hash = hash_(n-1)} )

with ``hash_0`` = 64 zeros (the genesis). So an edited entry no longer matches its hash, a
rewritten entry (hash recomputed) breaks the next entry's ``prev_hash``, a deleted entry
leaves a gap in the sequence numbers, and entries deleted from the end disagree with the chain
head (one row holding the last sequence number and hash, updated in the same transaction as
each append). `verify_chain` names exactly which entry breaks and how.

What the chain cannot show by itself is a wholesale rewrite by someone holding the database:
publish the head (``auditor trail verify`` prints it) somewhere else to anchor it.

Appends are serialized by the head row: the first statement of an append is an UPDATE of that
row, which takes PostgreSQL's row lock (or SQLite's write lock) until the transaction ends.
"""

from __future__ import annotations

import contextlib
import contextvars
import getpass
import hashlib
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import JSON, Integer, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from auditor.storage.store import Base, Store, canonical_sha256

__all__ = [
    "GENESIS_HASH",
    "TRAIL_SCHEMA_VERSION",
    "ChainProblem",
    "ChainReport",
    "EventRecord",
    "TrailEventRow",
    "TrailHeadRow",
    "acting_as",
    "append_event",
    "audit_sha256",
    "current_actor",
    "entry_hash",
    "iter_events",
    "list_events",
    "record_event",
    "set_default_actor",
    "verify_chain",
    "verify_store",
]

TRAIL_SCHEMA_VERSION: Final = "1"
GENESIS_HASH: Final = "0" * 64
HEAD_ID: Final = 1
_VERIFY_PAGE = 5_000

ACTIONS: Final = (
    "key.created",
    "key.revoked",
    "evaluation.submitted",
    "evaluation.deleted",
    "audit.started",
    "audit.finished",
    "audit.cancelled",
    "schedule.created",
    "schedule.updated",
    "schedule.paused",
    "schedule.resumed",
    "schedule.deleted",
    "schedule.run_started",
    "report.rendered",
    "webhook.delivered",
    "webhook.failed",
)
"""The actions recorded (others may be added; verification does not depend on the list)."""


class TrailEventRow(Base):
    __tablename__ = "trail_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    schema_version: Mapped[str] = mapped_column(String(8))
    at: Mapped[str] = mapped_column(String(40))
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(200))
    object_sha256: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class TrailHeadRow(Base):
    """The chain head: the last entry's sequence number and hash (one row, id 1)."""

    __tablename__ = "trail_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


class EventRecord(BaseModel):
    """One entry of the audit trail, as stored and as the API lists it."""

    model_config = ConfigDict(frozen=True)

    schema_version: str = Field(default=TRAIL_SCHEMA_VERSION, description="Entry format.")
    seq: int = Field(description="Position in the chain (1, 2, ...; no gaps).")
    at: str = Field(description="ISO-8601 UTC time of the action (microseconds).")
    tenant: str = Field(description="Tenant the action concerns.")
    actor: str = Field(
        description="Who acted: an API key id, `cli:<user>` or `system:<part>` (workers, beat)."
    )
    action: str = Field(description="What happened, e.g. `audit.finished`.")
    object_type: str = Field(description="Kind of object: key, evaluation, audit, schedule...")
    object_id: str = Field(description="Id of the object.")
    object_sha256: str | None = Field(
        description="SHA-256 of the object concerned (e.g. the stored result of a finished "
        "audit, an evaluation's content hash, a rendered report manifest)."
    )
    detail: dict[str, Any] = Field(description="Small facts about the action (no secrets).")
    prev_hash: str = Field(description="Hash of the previous entry (64 zeros for the first).")
    hash: str = Field(description="SHA-256 of this entry's canonical JSON (see module doc).")


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


def _canonical(document: Any) -> bytes:
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def entry_hash(entry: dict[str, Any] | EventRecord) -> str:
    """SHA-256 (hex) of an entry's content: every field except ``hash`` itself."""
    document = entry.model_dump() if isinstance(entry, EventRecord) else dict(entry)
    document.pop("hash", None)
    return hashlib.sha256(_canonical(document)).hexdigest()


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
        "detail": json.loads(_canonical(detail or {})),  # JSON-safe, as it will read back
        "prev_hash": prev_hash,
    }
    digest = entry_hash(content)
    session.add(TrailEventRow(**content, hash=digest))
    session.execute(update(TrailHeadRow).where(TrailHeadRow.id == HEAD_ID).values(hash=digest))
    session.flush()
    return EventRecord(**content, hash=digest)


def record_event(store: Store, **fields: Any) -> EventRecord:
    """Append an entry in a transaction of its own (see `append_event` for the fields)."""
    with store.session() as session, session.begin():
        return append_event(session, **fields)


# --- reading ------------------------------------------------------------------------------------


def _record(row: TrailEventRow) -> EventRecord:
    return EventRecord(
        schema_version=row.schema_version,
        seq=row.seq,
        at=row.at,
        tenant=row.tenant,
        actor=row.actor,
        action=row.action,
        object_type=row.object_type,
        object_id=row.object_id,
        object_sha256=row.object_sha256,
        detail=row.detail,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def list_events(
    store: Store,
    *,
    tenant: str | None,
    limit: int = 50,
    after: int = 0,
    action: str | None = None,
    object_id: str | None = None,
) -> list[EventRecord]:
    """Entries with ``seq > after``, oldest first (a tenant's, or all with ``tenant=None``)."""
    query = select(TrailEventRow).where(TrailEventRow.seq > after)
    if tenant is not None:
        query = query.where(TrailEventRow.tenant == tenant)
    if action is not None:
        query = query.where(TrailEventRow.action == action)
    if object_id is not None:
        query = query.where(TrailEventRow.object_id == object_id)
    with store.session() as session:
        rows = session.scalars(query.order_by(TrailEventRow.seq).limit(limit))
        return [_record(row) for row in rows]


def iter_events(store: Store, page: int = _VERIFY_PAGE) -> Iterator[EventRecord]:
    """Every entry in sequence order, read in pages (bounded memory)."""
    after = 0
    while True:
        batch = list_events(store, tenant=None, limit=page, after=after)
        yield from batch
        if len(batch) < page:
            return
        after = batch[-1].seq


def head_of(store: Store) -> tuple[int, str] | None:
    with store.session() as session:
        row = session.get(TrailHeadRow, HEAD_ID)
        return None if row is None else (row.seq, row.hash)


# --- verifying ----------------------------------------------------------------------------------

ProblemKind = Literal["edited", "relinked", "missing", "out_of_order", "head_mismatch"]


class ChainProblem(BaseModel):
    """One place where the chain is broken."""

    model_config = ConfigDict(frozen=True)

    seq: int = Field(description="The entry at which the break shows.")
    kind: ProblemKind = Field(
        description="`edited`: the entry's content does not match its hash; `relinked`: its "
        "prev_hash is not the previous entry's hash (the previous entry was rewritten or "
        "replaced); `missing`: entries are absent before it; `head_mismatch`: the chain head "
        "names a different last entry (entries deleted from the end)."
    )
    message: str = Field(description="What exactly does not match, for people.")


class ChainReport(BaseModel):
    """The outcome of verifying a chain."""

    model_config = ConfigDict(frozen=True)

    ok: bool = Field(description="True when no problem was found.")
    n_entries: int = Field(description="Entries read.")
    last_seq: int = Field(description="Sequence number of the last entry read (0 if none).")
    last_hash: str = Field(description="Hash of the last entry read (the genesis if none).")
    problems: list[ChainProblem] = Field(description="Every break found, in chain order.")


def _short(digest: str) -> str:
    return digest[:16] + "…"


def verify_chain(entries: Iterable[EventRecord], head: tuple[int, str] | None) -> ChainReport:
    """Check every entry's hash and link, the sequence for gaps and the head for truncation.

    Pure. ``entries`` in ascending ``seq``; ``head`` is the stored (seq, hash) of the chain
    head (None to skip that check). Each problem names the entry where it shows.
    """
    problems: list[ChainProblem] = []
    previous_seq, previous_hash = 0, GENESIS_HASH
    count = 0
    for entry in entries:
        count += 1
        label = f"entry {entry.seq} ({entry.action} {entry.object_type} {entry.object_id})"
        if entry.seq <= previous_seq:
            problems.append(
                ChainProblem(
                    seq=entry.seq,
                    kind="out_of_order",
                    message=f"{label}: sequence number {entry.seq} does not follow {previous_seq}",
                )
            )
        elif entry.seq != previous_seq + 1:
            first, last = previous_seq + 1, entry.seq - 1
            gap = f"entry {first} is" if first == last else f"entries {first} to {last} are"
            problems.append(
                ChainProblem(
                    seq=entry.seq,
                    kind="missing",
                    message=f"{gap} missing before entry {entry.seq} (deleted)",
                )
            )
        computed = entry_hash(entry)
        if computed != entry.hash:
            problems.append(
                ChainProblem(
                    seq=entry.seq,
                    kind="edited",
                    message=f"{label}: its content does not match its stored hash "
                    f"(stored {_short(entry.hash)}, content hashes to {_short(computed)}): "
                    "the entry was edited after it was written",
                )
            )
        if entry.prev_hash != previous_hash and entry.seq == previous_seq + 1:
            problems.append(
                ChainProblem(
                    seq=entry.seq,
                    kind="relinked",
                    message=f"{label}: prev_hash {_short(entry.prev_hash)} is not the hash of "
                    f"entry {previous_seq} ({_short(previous_hash)}): entry {previous_seq} was "
                    "rewritten or replaced",
                )
            )
        previous_seq, previous_hash = entry.seq, entry.hash
    if head is not None and (head[0], head[1]) != (previous_seq, previous_hash):
        head_seq, head_hash = head
        if head_seq > previous_seq:
            message = (
                f"the chain head records {head_seq} entries (last hash {_short(head_hash)}) but "
                f"the last entry is {previous_seq}: entries {previous_seq + 1} to {head_seq} "
                "were deleted from the end"
            )
        else:
            message = (
                f"the chain head (entry {head_seq}, hash {_short(head_hash)}) does not match "
                f"the last entry ({previous_seq}, hash {_short(previous_hash)})"
            )
        problems.append(ChainProblem(seq=head_seq, kind="head_mismatch", message=message))
    return ChainReport(
        ok=not problems,
        n_entries=count,
        last_seq=previous_seq,
        last_hash=previous_hash,
        problems=problems,
    )


def verify_store(store: Store) -> ChainReport:
    """Verify the whole stored chain against its head."""
    return verify_chain(iter_events(store), head_of(store))
