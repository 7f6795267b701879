"""Scheduled audits: a stored audit spec plus a cron expression and a time zone, per tenant.

Two layers:

- Pure timing (`next_slot`, `slots_between`, `decide`): when a schedule is due, which slot a
  run serves, how many slots it stands for. A schedule keeps ``next_due_at``, the first slot
  not yet served. When it is due and its previous run has ended, ONE run is started for the
  latest slot that has passed; every earlier unserved slot (beat was down, or the previous run
  was still going) is folded into it and counted in ``missed_slots``. So a missed run is run
  once when beat comes back, not once per missed slot, and a run still going is never joined
  by a second one (the due slot waits and is served as soon as the run ends).
- Storage (`create_schedule`, `claim_due`, ...): every change is one short transaction that
  also appends an entry to the audit trail; a run is claimed by compare-and-set on the
  schedule's ``version``, so two schedulers cannot start the same slot twice.

Cron: five fields (minute hour day month weekday), or six with seconds last
(``*/5 * * * * */2``: croniter's convention), read in the schedule's IANA time zone. Across a
daylight-saving change a wall-clock time that does not exist runs at the first time after the
gap; a wall-clock time that happens twice runs once (at its first occurrence) unless the hour
field is a wildcard or a step (``*``, ``*/2``), as Vixie cron does.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field

from auditor.schemas.canonical import canonical_sha256
from auditor.services.trail import append_event
from auditor.storage.repositories import schedules as schedule_rows
from auditor.storage.store import Store, new_id, utcnow
from auditor.storage.tables import ScheduleRow, ScheduleRunRow

__all__ = [
    "MAX_COUNTED_SLOTS",
    "SCHEDULE_SCHEMA_VERSION",
    "ClaimDecision",
    "NotifyPolicy",
    "Schedule",
    "ScheduleRun",
    "claim_due",
    "create_schedule",
    "decide",
    "delete_schedule",
    "get_schedule",
    "is_finished_run",
    "list_schedules",
    "next_slot",
    "run_status",
    "runs_of",
    "schedule_sha256",
    "set_baseline",
    "set_paused",
    "shortest_period",
    "slots_between",
    "update_schedule",
    "validate_cron",
    "validate_timezone",
]

Schedule: TypeAlias = ScheduleRow
"""A schedule as stored (definition, timing, webhook, baseline, version), as the functions
here return it."""
ScheduleRun: TypeAlias = ScheduleRunRow
"""One claimed run of a schedule as stored (slot, state, audit, pins, drift, error)."""

SCHEDULE_SCHEMA_VERSION: Final = "1"
MAX_COUNTED_SLOTS: Final = 100_000
"""Missed slots are counted up to this many (a per-second cron down for days stops here)."""
_PERIOD_SAMPLES = 50
_WILDCARD_HOUR = re.compile(r"^\*(/\d+)?$")

RunState = Literal["claimed", "started", "failed"]


# --- boundary shapes ----------------------------------------------------------------------------


class NotifyPolicy(BaseModel):
    """When a scheduled run notifies the schedule's webhook."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    on_flag: bool = Field(
        default=True,
        description="Notify when a judge becomes flagged (was not in the previous run).",
    )
    effect_growth: float | None = Field(
        default=0.2,
        ge=0,
        le=2,
        description="Notify when a judge's partial r grows by more than this since the previous "
        "run, or first exceeds the baseline by more than this (null: never).",
    )
    require_significant: bool = Field(
        default=True,
        description="Count growth only when the bootstrap 95% CI of the change excludes 0.",
    )


# --- pure timing --------------------------------------------------------------------------------


def validate_timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"timezone: not an IANA time zone name; got {name!r}") from None


def validate_cron(expression: str) -> str:
    """The expression, stripped, if croniter reads it (5 fields, or 6 with seconds last)."""
    expression = " ".join(expression.split())
    fields = expression.split(" ")
    if len(fields) not in (5, 6) or not croniter.is_valid(expression):
        raise ValueError(
            "cron: must be 5 fields (minute hour day month weekday) or 6 with seconds last; "
            f"got {expression!r}"
        )
    return expression


def _as_utc(moment: datetime) -> datetime:
    """Naive datetimes are UTC (as stored); aware ones are converted."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _naive_utc(moment: datetime) -> datetime:
    return _as_utc(moment).replace(tzinfo=None)


def _repeated_wall_time_skipped(expression: str) -> bool:
    return not _WILDCARD_HOUR.match(expression.split(" ")[1])


def _iterate(expression: str, timezone: str, after: datetime) -> Iterator[datetime]:
    """Slots strictly after ``after``, as naive UTC, in order (DST rules in the module doc)."""
    zone = validate_timezone(timezone)
    start = _as_utc(after).astimezone(zone)
    skip_repeats = _repeated_wall_time_skipped(expression)
    iterator = croniter(expression, start)
    previous: datetime | None = None
    while True:
        local: datetime = iterator.get_next(datetime)
        if skip_repeats and local.fold == 1:
            earlier = local.replace(fold=0)
            if earlier.utcoffset() != local.utcoffset():
                continue  # the second occurrence of a repeated wall-clock time
        slot = _naive_utc(local)
        if previous is not None and slot <= previous:
            continue
        previous = slot
        yield slot


def next_slot(expression: str, timezone: str, after: datetime) -> datetime:
    """The first slot strictly after ``after`` (naive UTC in, naive UTC out).

    >>> next_slot("0 6 * * *", "Europe/Berlin", datetime(2026, 1, 5, 6, 0))
    datetime.datetime(2026, 1, 6, 5, 0)
    """
    return next(_iterate(expression, timezone, after))


def latest_slot(expression: str, timezone: str, until: datetime) -> datetime:
    """The last slot at or before ``until`` (naive UTC in, naive UTC out)."""
    zone = validate_timezone(timezone)
    moment = _naive_utc(until).replace(microsecond=0) + timedelta(seconds=1)
    iterator = croniter(expression, moment.replace(tzinfo=UTC).astimezone(zone))
    skip_repeats = _repeated_wall_time_skipped(expression)
    while True:
        local: datetime = iterator.get_prev(datetime)
        if (
            skip_repeats
            and local.fold == 1
            and local.replace(fold=0).utcoffset() != (local.utcoffset())
        ):
            continue
        return _naive_utc(local)


def slots_between(
    expression: str, timezone: str, first: datetime, until: datetime
) -> tuple[datetime | None, int]:
    """(latest slot, number of slots) among the slots in [first, until], where ``first`` is
    itself a slot (a schedule's next_due_at). Counting stops at `MAX_COUNTED_SLOTS`; the
    latest slot is exact whatever the count."""
    first, until = _naive_utc(first), _naive_utc(until)
    if first > until:
        return None, 0
    count = 1
    for slot in _iterate(expression, timezone, first):
        if slot > until or count >= MAX_COUNTED_SLOTS:
            break
        count += 1
    return max(first, latest_slot(expression, timezone, until)), count


def shortest_period(expression: str, timezone: str, start: datetime) -> timedelta:
    """The shortest gap between consecutive slots among the next few after ``start``."""
    slots = _iterate(expression, timezone, start)
    previous = next(slots)
    shortest = timedelta.max
    for _ in range(_PERIOD_SAMPLES):
        slot = next(slots)
        shortest = min(shortest, slot - previous)
        previous = slot
    return shortest


@dataclass(frozen=True)
class ClaimDecision:
    """What to do with a schedule now.

    ``action``: ``wait`` (not due), ``paused``, ``blocked`` (due, but its previous run is still
    going: the slot waits for it) or ``run`` (start one run for ``slot``, standing for
    ``missed_slots`` earlier unserved slots too; the schedule is next due at ``next_due_at``).
    """

    action: Literal["wait", "paused", "blocked", "run"]
    slot: datetime | None = None
    missed_slots: int = 0
    next_due_at: datetime | None = None


def decide(
    *,
    cron: str,
    timezone: str,
    paused: bool,
    next_due_at: datetime,
    previous_run_active: bool,
    now: datetime,
) -> ClaimDecision:
    """Pure: whether a schedule runs now, for which slot, standing for how many missed slots.

    >>> decide(cron="0 * * * *", timezone="UTC", paused=False,
    ...        next_due_at=datetime(2026, 1, 1, 1, 0), previous_run_active=False,
    ...        now=datetime(2026, 1, 1, 4, 30))
    ClaimDecision(action='run', slot=datetime.datetime(2026, 1, 1, 4, 0), missed_slots=3, \
next_due_at=datetime.datetime(2026, 1, 1, 5, 0))
    """
    if paused:
        return ClaimDecision("paused")
    now, next_due_at = _naive_utc(now), _naive_utc(next_due_at)
    if now < next_due_at:
        return ClaimDecision("wait", next_due_at=next_due_at)
    if previous_run_active:
        return ClaimDecision("blocked", next_due_at=next_due_at)
    latest, count = slots_between(cron, timezone, next_due_at, now)
    assert latest is not None  # next_due_at <= now, so there is at least that slot
    return ClaimDecision(
        "run",
        slot=latest,
        missed_slots=count - 1,
        next_due_at=next_slot(cron, timezone, latest),
    )


# --- storage ------------------------------------------------------------------------------------


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def schedule_sha256(row: ScheduleRow) -> str:
    """SHA-256 of a schedule's definition (the webhook secret enters as its own hash)."""
    secret = row.webhook_secret
    return canonical_sha256(
        {
            "id": row.id,
            "tenant": row.tenant,
            "name": row.name,
            "spec": row.spec,
            "cron": row.cron,
            "timezone": row.timezone,
            "paused": row.paused,
            "webhook_url": row.webhook_url,
            "webhook_secret_sha256": hashlib.sha256(secret.encode()).hexdigest()
            if secret
            else None,
            "notify": row.notify,
            "baseline_audit_id": row.baseline_audit_id,
            "deleted": row.deleted_at is not None,
        }
    )


def _event(session: Any, row: ScheduleRow, action: str, detail: dict[str, Any]) -> None:
    append_event(
        session,
        tenant=row.tenant,
        action=action,
        object_type="schedule",
        object_id=row.id,
        object_sha256=schedule_sha256(row),
        detail=detail,
    )


def create_schedule(
    store: Store,
    *,
    tenant: str,
    name: str,
    spec: dict[str, Any],
    cron: str,
    timezone: str = "UTC",
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
    notify: NotifyPolicy | None = None,
    baseline_audit_id: str | None = None,
    paused: bool = False,
    now: datetime | None = None,
) -> ScheduleRow:
    """Store a schedule (``spec`` already validated, as `AuditSpec.public_dict` gives it)."""
    cron = validate_cron(cron)
    validate_timezone(timezone)
    now = _naive_utc(now or utcnow())
    row = ScheduleRow(
        id=new_id(),
        schema_version=SCHEDULE_SCHEMA_VERSION,
        tenant=tenant,
        name=name,
        spec=spec,
        cron=cron,
        timezone=timezone,
        paused=paused,
        webhook_url=webhook_url,
        webhook_secret=(webhook_secret or new_webhook_secret()) if webhook_url else None,
        notify=(notify or NotifyPolicy()).model_dump(),
        baseline_audit_id=baseline_audit_id,
        next_due_at=next_slot(cron, timezone, now),
        last_slot_at=None,
        version=0,
        created_at=now,
        updated_at=now,
        deleted_at=None,
    )
    with store.transaction() as session:
        schedule_rows.add_schedule(session, row)
        _event(session, row, "schedule.created", {"name": name, "cron": cron, "tz": timezone})
    return row


def get_schedule(
    store: Store, schedule_id: str, *, tenant: str | None = None
) -> ScheduleRow | None:
    row = schedule_rows.get_schedule(store, schedule_id)
    if row is None or row.deleted_at is not None:
        return None
    if tenant is not None and row.tenant != tenant:
        return None
    return row


def list_schedules(
    store: Store, *, tenant: str | None, limit: int = 50, offset: int = 0
) -> list[ScheduleRow]:
    return schedule_rows.list_schedules(store, tenant=tenant, limit=limit, offset=offset)


_UPDATABLE = ("name", "spec", "cron", "timezone", "webhook_url", "webhook_secret", "notify")


def update_schedule(
    store: Store,
    schedule_id: str,
    *,
    tenant: str,
    now: datetime | None = None,
    **changes: Any,
) -> ScheduleRow | None:
    """Change a schedule's definition; a new cron or time zone counts from now (slots of the
    old timing that were not served are dropped, not caught up)."""
    unknown = set(changes) - set(_UPDATABLE)
    if unknown:
        raise ValueError(f"cannot change {', '.join(sorted(unknown))} of a schedule")
    if "cron" in changes:
        changes["cron"] = validate_cron(changes["cron"])
    if "timezone" in changes:
        validate_timezone(changes["timezone"])
    if isinstance(changes.get("notify"), NotifyPolicy):
        changes["notify"] = changes["notify"].model_dump()
    now = _naive_utc(now or utcnow())
    with store.transaction() as session:
        row = schedule_rows.lock_schedule(session, schedule_id)
        if row is None or row.tenant != tenant or row.deleted_at is not None:
            return None
        if changes.get("webhook_url") and not (changes.get("webhook_secret") or row.webhook_secret):
            changes["webhook_secret"] = new_webhook_secret()
        values = dict(changes)
        if "cron" in changes or "timezone" in changes:
            values["next_due_at"] = next_slot(
                changes.get("cron", row.cron), changes.get("timezone", row.timezone), now
            )
        values.update(version=row.version + 1, updated_at=now)
        schedule_rows.update_locked(session, row, values)
        _event(session, row, "schedule.updated", {"fields": sorted(changes)})
        return row


def set_paused(
    store: Store, schedule_id: str, *, tenant: str, paused: bool, now: datetime | None = None
) -> ScheduleRow | None:
    """Pause or resume. Resuming does not catch up the slots that passed while paused."""
    now = _naive_utc(now or utcnow())
    with store.transaction() as session:
        row = schedule_rows.lock_schedule(session, schedule_id)
        if row is None or row.tenant != tenant or row.deleted_at is not None:
            return None
        if row.paused == paused:
            return row
        values: dict[str, Any] = {"paused": paused}
        if not paused:
            values["next_due_at"] = next_slot(row.cron, row.timezone, now)
        values.update(version=row.version + 1, updated_at=now)
        schedule_rows.update_locked(session, row, values)
        _event(session, row, "schedule.paused" if paused else "schedule.resumed", {})
        return row


def delete_schedule(store: Store, schedule_id: str, *, tenant: str) -> bool:
    """Delete a schedule (kept for the record with its runs; no further runs start)."""
    now = utcnow()
    with store.transaction() as session:
        row = schedule_rows.lock_schedule(session, schedule_id)
        if row is None or row.tenant != tenant or row.deleted_at is not None:
            return False
        schedule_rows.update_locked(
            session,
            row,
            {"deleted_at": now, "paused": True, "version": row.version + 1, "updated_at": now},
        )
        _event(session, row, "schedule.deleted", {})
        return True


def set_baseline(
    store: Store,
    schedule_id: str,
    *,
    tenant: str,
    audit_id: str | None,
    only_if_unset: bool = False,
) -> ScheduleRow | None:
    """Designate the run (audit) every later run is compared with as the baseline."""
    with store.transaction() as session:
        row = schedule_rows.lock_schedule(session, schedule_id)
        if row is None or row.tenant != tenant:
            return None
        if only_if_unset and row.baseline_audit_id is not None:
            return row
        schedule_rows.update_locked(
            session,
            row,
            {"baseline_audit_id": audit_id, "version": row.version + 1, "updated_at": utcnow()},
        )
        _event(session, row, "schedule.updated", {"fields": ["baseline_audit_id"]})
        return row


def runs_of(
    store: Store, schedule_id: str, *, limit: int = 1000, newest_first: bool = False
) -> list[ScheduleRunRow]:
    return schedule_rows.runs_of(store, schedule_id, limit=limit, newest_first=newest_first)


def run_of_audit(store: Store, audit_id: str) -> ScheduleRunRow | None:
    return schedule_rows.run_of_audit(store, audit_id)


def run_status(store: Store, run: ScheduleRunRow) -> str | None:
    """The status of the run's audit (None before its audit was created, or if it is gone)."""
    if not run.audit_id:
        return None
    return schedule_rows.audit_status(store, run.audit_id)


def is_finished_run(store: Store, schedule_id: str, audit_id: str) -> bool:
    """True if ``audit_id`` is the audit of a run of this schedule and its result is stored:
    the only audits a baseline may name."""
    run = run_of_audit(store, audit_id)
    return (
        run is not None
        and run.schedule_id == schedule_id
        and store.get_result(audit_id) is not None
    )


def _previous_run_active(store: Store, schedule_id: str, active_statuses: tuple[str, ...]) -> bool:
    latest = runs_of(store, schedule_id, limit=1, newest_first=True)
    if not latest:
        return False
    run = latest[0]
    if run.state == "failed":
        return False
    if run.audit_id is None:
        return True  # claimed, its audit not created yet: being started right now
    return schedule_rows.audit_status(store, run.audit_id) in active_statuses


def claim_due(
    store: Store,
    *,
    now: datetime | None = None,
    active_statuses: tuple[str, ...] = ("queued", "running"),
) -> tuple[list[ScheduleRunRow], dict[str, ClaimDecision]]:
    """Claim one run for every schedule that is due and whose previous run has ended.

    The claim is a compare-and-set on the schedule's version: of two schedulers that see the
    same due slot, one claims it. Returns (runs claimed, decision per due schedule).
    """
    now = _naive_utc(now or utcnow())
    due = schedule_rows.due_schedules(store, now=now)
    claimed: list[ScheduleRunRow] = []
    decisions: dict[str, ClaimDecision] = {}
    for schedule in due:
        decision = decide(
            cron=schedule.cron,
            timezone=schedule.timezone,
            paused=schedule.paused,
            next_due_at=schedule.next_due_at,
            previous_run_active=_previous_run_active(store, schedule.id, active_statuses),
            now=now,
        )
        decisions[schedule.id] = decision
        if decision.action != "run":
            continue
        assert decision.slot is not None and decision.next_due_at is not None
        run = schedule_rows.claim_slot(
            store,
            schedule,
            slot=decision.slot,
            next_due_at=decision.next_due_at,
            missed_slots=decision.missed_slots,
        )
        if run is None:
            continue  # changed or claimed by someone else since it was read
        claimed.append(run)
    return claimed, decisions


def unstarted_runs(store: Store, *, older_than: timedelta = timedelta(0)) -> list[ScheduleRunRow]:
    """Runs claimed whose audit was never created (the scheduler stopped in between)."""
    cutoff = utcnow() - older_than
    return schedule_rows.unstarted_runs(store, claimed_before=cutoff)


def mark_started(store: Store, run_id: str, audit_id: str) -> None:
    schedule_rows.update_run(store, run_id, audit_id=audit_id, state="started")


def save_run_analysis(
    store: Store, run_id: str, *, pins: dict[str, Any] | None, drift: dict[str, Any] | None
) -> None:
    schedule_rows.update_run(store, run_id, pins=pins, drift=drift)


def fail_run(store: Store, run_id: str, error: str) -> None:
    """A claimed run whose audit could not be created (its spec no longer validates)."""
    schedule_rows.update_run(store, run_id, state="failed", error=error[:2000])


def fail_analysis(store: Store, run_id: str, error: str) -> None:
    """Keep why a run's drift could not be computed (the audit itself succeeded)."""
    schedule_rows.update_run(store, run_id, error=error[:2000])


def get_run(store: Store, run_id: str) -> ScheduleRunRow | None:
    return schedule_rows.get_run(store, run_id)
