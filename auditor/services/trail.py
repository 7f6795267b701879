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

The stored objects are checked against the hashes the chain recorded (`verify_objects`): an
audit's spec (``audit.started`` holds `audit_sha256` of its id, tenant, spec and evaluation),
its result and the calls it read (``audit.finished`` holds the result's SHA-256 and, in its
detail, `auditor.storage.trail.calls_sha256` of the audit's finished calls at that moment). So a
planted setting edited in a stored spec, or a judge reply edited in a stored call, is named.

What the chain cannot show by itself is a wholesale rewrite by someone holding the database:
publish the head (``auditor trail verify`` prints it) somewhere else to anchor it.

Appends are serialized by the head row: the first statement of an append is an UPDATE of that
row, which takes PostgreSQL's row lock (or SQLite's write lock) until the transaction ends.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from auditor.schemas.canonical import canonical_sha256
from auditor.schemas.trail import TRAIL_SCHEMA_VERSION, EventRecord
from auditor.storage.repositories import trail as trail_rows
from auditor.storage.store import Store
from auditor.storage.tables import TrailEventRow
from auditor.storage.trail import (
    GENESIS_HASH,
    acting_as,
    append_event,
    audit_sha256,
    bind_actor,
    cli_actor,
    current_actor,
    entry_hash,
    reset_actor,
    set_default_actor,
)

__all__ = [
    "GENESIS_HASH",
    "TRAIL_SCHEMA_VERSION",
    "ChainProblem",
    "ChainReport",
    "EventRecord",
    "acting_as",
    "append_event",
    "audit_sha256",
    "bind_actor",
    "cli_actor",
    "current_actor",
    "entry_hash",
    "iter_events",
    "list_events",
    "record_event",
    "reset_actor",
    "set_default_actor",
    "verify_chain",
    "verify_objects",
    "verify_store",
]

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


def record_event(store: Store, **fields: Any) -> EventRecord:
    """Append an entry in a transaction of its own (see `append_event` for the fields)."""
    return trail_rows.record_event(store, **fields)


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
    rows = trail_rows.list_events(
        store, tenant=tenant, limit=limit, after=after, action=action, object_id=object_id
    )
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
    return trail_rows.head(store)


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


# --- stored objects against the trail ----------------------------------------------------------


def verify_objects(store: Store) -> list[str]:
    """Every stored object the trail recorded a hash of, checked against that hash; one line
    per object changed since, naming the object, the entry and both hashes.

    - ``audit.started``: the audit's spec, tenant and evaluation (`audit_sha256`). An audit row
      that is gone is not named here: its result goes with it (cascade) and is named below.
    - ``audit.finished``: the stored result (its canonical SHA-256; a deleted result is named)
      and, for entries that recorded them, the audit's finished calls (`calls_sha256` with the
      recorded cutoff).
    The chain itself is checked by `verify_store`."""
    problems: list[str] = []
    for event in iter_events(store):
        if event.object_type != "audit":
            continue
        if event.action == "audit.started" and event.object_sha256 is not None:
            problems.extend(_check_audit(store, event))
        elif event.action == "audit.finished":
            problems.extend(_check_finished(store, event))
    return problems


def _check_audit(store: Store, event: EventRecord) -> list[str]:
    row = store.get_audit(event.object_id)
    if row is None:
        return []
    found = audit_sha256(row)
    if found == event.object_sha256:
        return []
    return [
        f"audit {event.object_id}: its stored spec, tenant or evaluation hash to {found} but "
        f"entry {event.seq} recorded {event.object_sha256} when the audit started (the stored "
        "audit was changed afterwards)"
    ]


def _check_finished(store: Store, event: EventRecord) -> list[str]:
    problems: list[str] = []
    recorded = event.detail.get("calls_sha256")
    cutoff = event.detail.get("calls_cutoff")
    calls: tuple[str, int] | None = None
    if recorded is not None and cutoff is not None:
        result, calls = trail_rows.finished_audit(
            store, event.object_id, cutoff=datetime.fromisoformat(cutoff)
        )
    else:
        result = trail_rows.stored_result(store, event.object_id)
    if event.object_sha256 is not None:
        if result is None:
            problems.append(
                f"result of audit {event.object_id}: recorded at entry {event.seq} but no "
                "longer stored (deleted)"
            )
        else:
            found = canonical_sha256(result.report)
            if found != event.object_sha256:
                problems.append(
                    f"result of audit {event.object_id}: the stored result hashes to "
                    f"{found} but entry {event.seq} recorded {event.object_sha256} when the "
                    "audit finished (the result was changed afterwards)"
                )
    if calls is None:
        return problems
    digest, count = calls
    if digest != recorded:
        expected = event.detail.get("calls")
        counted = (
            f"{count} finished calls are stored where {expected} were"
            if count != expected
            else f"the {count} finished calls are stored but differ"
        )
        problems.append(
            f"calls of audit {event.object_id}: {counted} when the audit finished: they hash "
            f"to {digest} but entry {event.seq} recorded {recorded} (a stored reply or call was "
            "changed afterwards)"
        )
    return problems
