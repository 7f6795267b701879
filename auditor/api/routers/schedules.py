"""Schedules: create, list, get, change, pause, resume, delete; their runs (with drift), their
baseline and their webhook deliveries."""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response
from pydantic import BaseModel, Field

from auditor.api.deps import (
    ID_PATTERN,
    RawBody,
    SettingsDep,
    StoreDep,
    TenantDep,
    current_tenant,
    strict_json,
)
from auditor.api.errors import BAD_BODY, ERROR_RESPONSES, TOO_LARGE
from auditor.api.schemas import UtcDatetime
from auditor.schemas.bundle import Problem
from auditor.schemas.spec import AuditSpec, SpecError
from auditor.services import schedules
from auditor.services.audits import admission_problems
from auditor.services.governance import validate_timing
from auditor.services.notifications import Delivery, check_webhook_url, deliveries_of
from auditor.services.schedules import NotifyPolicy, Schedule, ScheduleRun
from auditor.settings import Settings
from auditor.storage.store import Store

__all__ = ["PREFIX", "router"]

PREFIX: Final = "/v1/schedules"

ScheduleId = Annotated[str, Path(pattern=ID_PATTERN, description="Schedule id.")]

router = APIRouter(
    prefix=PREFIX,
    tags=["schedules"],
    dependencies=[Depends(current_tenant)],
    responses=ERROR_RESPONSES,
)


# --- shapes -------------------------------------------------------------------------------------


class ScheduleIn(BaseModel):
    """A new schedule."""

    name: str | None = Field(
        default=None, max_length=200, description="A label (default: the spec's name)."
    )
    spec: AuditSpec = Field(description="The audit run at each slot (as POST /v1/audits takes).")
    cron: str = Field(
        max_length=200,
        description="Cron expression: 5 fields (minute hour day month weekday), or 6 with "
        "seconds last.",
    )
    timezone: str = Field(default="UTC", max_length=64, description="IANA time zone of the cron.")
    webhook_url: str | None = Field(
        default=None,
        max_length=2000,
        description="Notified (signed JSON POST) when a judge drifts.",
    )
    webhook_secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=200,
        description="HMAC-SHA256 secret of the webhook (default: generated, shown once).",
    )
    notify: NotifyPolicy = Field(default_factory=NotifyPolicy, description="When to notify.")
    paused: bool = Field(default=False, description="Create it paused.")


class ScheduleUpdate(BaseModel):
    """Changes to a schedule (fields left out stay as they are)."""

    name: str | None = Field(default=None, max_length=200, description="A new label.")
    spec: AuditSpec | None = Field(default=None, description="A new audit spec.")
    cron: str | None = Field(default=None, max_length=200, description="A new cron expression.")
    timezone: str | None = Field(default=None, max_length=64, description="A new time zone.")
    webhook_url: str | None = Field(default=None, max_length=2000, description="A new webhook.")
    webhook_secret: str | None = Field(
        default=None, min_length=16, max_length=200, description="A new webhook secret."
    )
    notify: NotifyPolicy | None = Field(default=None, description="A new notification policy.")


class BaselineIn(BaseModel):
    audit_id: str = Field(description="A finished run's audit id.")


class ScheduleOut(BaseModel):
    """A schedule."""

    id: str = Field(description="Schedule id.")
    name: str = Field(description="A label for people.")
    cron: str = Field(description="Cron expression.")
    timezone: str = Field(description="IANA time zone of the cron.")
    paused: bool = Field(description="Whether runs are suspended.")
    next_due_at: UtcDatetime = Field(description="The next slot (UTC) not yet served.")
    last_slot_at: UtcDatetime | None = Field(
        description="The last slot a run was started for (UTC)."
    )
    webhook_url: str | None = Field(description="Notified when a judge drifts.")
    notify: NotifyPolicy = Field(description="When to notify.")
    baseline_audit_id: str | None = Field(description="The run every later run is compared with.")
    spec: dict[str, Any] = Field(description="The audit spec run at each slot.")
    created_at: UtcDatetime = Field(description="When it was created (UTC).")
    updated_at: UtcDatetime = Field(description="Last change (UTC).")

    @classmethod
    def of(cls, row: Schedule) -> ScheduleOut:
        return cls(
            id=row.id,
            name=row.name,
            cron=row.cron,
            timezone=row.timezone,
            paused=row.paused,
            next_due_at=row.next_due_at,
            last_slot_at=row.last_slot_at,
            webhook_url=row.webhook_url,
            notify=NotifyPolicy.model_validate(row.notify),
            baseline_audit_id=row.baseline_audit_id,
            spec=row.spec,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class ScheduleCreated(ScheduleOut):
    webhook_secret: str | None = Field(
        description="The webhook's HMAC secret: shown in this response only."
    )


class SchedulePage(BaseModel):
    items: list[ScheduleOut] = Field(description="The schedules on this page, oldest first.")
    limit: int = Field(description="Page size asked for.")
    offset: int = Field(description="Schedules skipped before this page.")
    next: str | None = Field(description="URL of the next page; null on the last page.")


class RunOut(BaseModel):
    """One run of a schedule."""

    id: str = Field(description="Run id.")
    slot_at: UtcDatetime = Field(description="The slot (UTC) the run serves.")
    missed_slots: int = Field(
        description="Earlier unserved slots folded into this run (beat down, or the previous "
        "run still going)."
    )
    claimed_at: UtcDatetime = Field(description="When the scheduler claimed it (UTC).")
    state: str = Field(description="claimed, started or failed (its audit could not start).")
    audit_id: str | None = Field(description="The run's audit.")
    status: str | None = Field(description="The audit's status.")
    error: str | None = Field(description="Why the run, or its drift, failed.")
    pins: dict[str, Any] | None = Field(
        description="What the run used: models as requested and as the provider reported "
        "them, parameters, prompt template hashes, item set hash."
    )
    drift: dict[str, Any] | None = Field(
        description="Comparison with the previous run and the baseline, alerts, history."
    )


class RunPage(BaseModel):
    items: list[RunOut] = Field(description="Runs, oldest first.")


class DeliveryOut(BaseModel):
    """A webhook notification and what became of it."""

    id: str = Field(description="Delivery id (the X-Auditor-Delivery header).")
    event: str = Field(description="Event name (X-Auditor-Event).")
    run_id: str | None = Field(description="The run that caused it.")
    status: str = Field(description="pending, delivered or failed.")
    attempts: int = Field(description="Attempts made.")
    last_status_code: int | None = Field(description="HTTP status of the last attempt.")
    last_error: str | None = Field(description="Error of the last attempt.")
    history: list[dict[str, Any]] = Field(description="Every attempt: time, status, error.")
    created_at: UtcDatetime = Field(description="When it was created (UTC).")
    delivered_at: UtcDatetime | None = Field(description="When a 2xx answer came (UTC).")

    @classmethod
    def of(cls, row: Delivery) -> DeliveryOut:
        return cls(
            id=row.id,
            event=row.event,
            run_id=row.run_id,
            status=row.status,
            attempts=row.attempts,
            last_status_code=row.last_status_code,
            last_error=row.last_error,
            history=row.history,
            created_at=row.created_at,
            delivered_at=row.delivered_at,
        )


class DeliveryPage(BaseModel):
    items: list[DeliveryOut] = Field(description="Deliveries, oldest first.")


# --- helpers ------------------------------------------------------------------------------------


def _schedule(store: Store, tenant: str, schedule_id: str) -> Schedule:
    row = schedules.get_schedule(store, schedule_id, tenant=tenant)
    if row is None:
        raise HTTPException(404, "schedule not found")
    return row


def _spec_problems(
    store: Store, spec: AuditSpec, tenant: str, settings: Settings, at: str
) -> list[Problem]:
    return admission_problems(
        store, spec, tenant=tenant, allowed_api_bases=settings.api.allowed_api_bases, at=at
    )


def _checked(problems: list[Problem], path: str, check: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return check(*args, **kwargs)
    except ValueError as error:
        message = str(error).split(": ", 1)[-1]
        problems.append(Problem(path, message))
        return None


# --- endpoints ----------------------------------------------------------------------------------


@router.post(
    "",
    status_code=201,
    response_model=ScheduleCreated,
    summary="Create a schedule",
    responses={201: {"description": "Created; `Location` names it."}, **BAD_BODY, **TOO_LARGE},
)
def create_schedule(
    body: ScheduleIn,
    raw: RawBody,
    response: Response,
    store: StoreDep,
    tenant: TenantDep,
    settings: SettingsDep,
) -> ScheduleCreated:
    """Store an audit spec with a cron expression and time zone; beat runs it from the next
    slot on (no restart)."""
    body = strict_json(raw, ScheduleIn)
    problems = _spec_problems(store, body.spec, tenant, settings, "spec")
    cron = _checked(
        problems,
        "cron",
        validate_timing,
        body.cron,
        body.timezone,
        min_interval=settings.schedule.min_interval,
    )
    if body.webhook_url is not None:
        _checked(
            problems,
            "webhook_url",
            check_webhook_url,
            body.webhook_url,
            allow_private=settings.webhook.allow_private,
        )
    if problems:
        raise SpecError(problems)
    row = schedules.create_schedule(
        store,
        tenant=tenant,
        name=body.name or body.spec.name,
        spec=body.spec.public_dict(),
        cron=cron,
        timezone=body.timezone,
        webhook_url=body.webhook_url,
        webhook_secret=body.webhook_secret,
        notify=body.notify,
        paused=body.paused,
    )
    response.headers["Location"] = f"{PREFIX}/{row.id}"
    return ScheduleCreated(**ScheduleOut.of(row).model_dump(), webhook_secret=row.webhook_secret)


@router.get("", response_model=SchedulePage, summary="List schedules")
def list_schedules(
    store: StoreDep,
    tenant: TenantDep,
    limit: Annotated[int, Query(ge=1, le=200, description="Page size.")] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1, description="Schedules to skip.")] = 0,
) -> SchedulePage:
    """The tenant's schedules (paused ones too), oldest first."""
    rows = schedules.list_schedules(store, tenant=tenant, limit=limit + 1, offset=offset)
    more = len(rows) > limit
    return SchedulePage(
        items=[ScheduleOut.of(row) for row in rows[:limit]],
        limit=limit,
        offset=offset,
        next=f"{PREFIX}?limit={limit}&offset={offset + limit}" if more else None,
    )


@router.get("/{schedule_id}", response_model=ScheduleOut, summary="Get a schedule")
def get_schedule(schedule_id: ScheduleId, store: StoreDep, tenant: TenantDep) -> ScheduleOut:
    return ScheduleOut.of(_schedule(store, tenant, schedule_id))


@router.patch(
    "/{schedule_id}",
    response_model=ScheduleCreated,
    responses={**BAD_BODY, **TOO_LARGE},
    summary="Change a schedule",
)
def update_schedule(
    schedule_id: ScheduleId,
    body: ScheduleUpdate,
    raw: RawBody,
    store: StoreDep,
    tenant: TenantDep,
    settings: SettingsDep,
) -> ScheduleCreated:
    """Change the spec, timing, webhook or policy; a new timing counts from now. A webhook
    secret generated by this change (a first webhook URL without a secret) is shown in this
    response only."""
    body = strict_json(raw, ScheduleUpdate)
    row = _schedule(store, tenant, schedule_id)
    problems: list[Problem] = []
    changes: dict[str, Any] = {}
    fields = body.model_fields_set
    if "spec" in fields and body.spec is not None:
        problems += _spec_problems(store, body.spec, tenant, settings, "spec")
        changes["spec"] = body.spec.public_dict()
    if "cron" in fields or "timezone" in fields:
        timezone = body.timezone or row.timezone
        changes["cron"] = _checked(
            problems,
            "cron",
            validate_timing,
            body.cron or row.cron,
            timezone,
            min_interval=settings.schedule.min_interval,
        )
        changes["timezone"] = timezone
    if "webhook_url" in fields:
        if body.webhook_url is not None:
            _checked(
                problems,
                "webhook_url",
                check_webhook_url,
                body.webhook_url,
                allow_private=settings.webhook.allow_private,
            )
        changes["webhook_url"] = body.webhook_url
    for name in ("name", "webhook_secret", "notify"):
        if name in fields and getattr(body, name) is not None:
            changes[name] = getattr(body, name)
    if problems:
        raise SpecError(problems)
    updated = (
        schedules.update_schedule(store, schedule_id, tenant=tenant, **changes) if changes else row
    )
    if updated is None:
        raise HTTPException(404, "schedule not found")
    generated = updated.webhook_secret if updated.webhook_secret != row.webhook_secret else None
    return ScheduleCreated(
        **ScheduleOut.of(updated).model_dump(),
        webhook_secret=generated if "webhook_secret" not in changes else None,
    )


@router.post("/{schedule_id}/pause", response_model=ScheduleOut, summary="Pause a schedule")
def pause_schedule(schedule_id: ScheduleId, store: StoreDep, tenant: TenantDep) -> ScheduleOut:
    """No new runs start (a run already going finishes)."""
    row = schedules.set_paused(store, schedule_id, tenant=tenant, paused=True)
    if row is None:
        raise HTTPException(404, "schedule not found")
    return ScheduleOut.of(row)


@router.post("/{schedule_id}/resume", response_model=ScheduleOut, summary="Resume a schedule")
def resume_schedule(schedule_id: ScheduleId, store: StoreDep, tenant: TenantDep) -> ScheduleOut:
    """Runs start again from the next slot (slots passed while paused are not caught up)."""
    row = schedules.set_paused(store, schedule_id, tenant=tenant, paused=False)
    if row is None:
        raise HTTPException(404, "schedule not found")
    return ScheduleOut.of(row)


@router.delete(
    "/{schedule_id}", status_code=204, response_class=Response, summary="Delete a schedule"
)
def delete_schedule(schedule_id: ScheduleId, store: StoreDep, tenant: TenantDep) -> Response:
    """No further runs; the runs so far, their audits and the trail are kept."""
    if not schedules.delete_schedule(store, schedule_id, tenant=tenant):
        raise HTTPException(404, "schedule not found")
    return Response(status_code=204)


def _run_out(store: Store, run: ScheduleRun) -> RunOut:
    return RunOut(
        id=run.id,
        slot_at=run.slot_at,
        missed_slots=run.missed_slots,
        claimed_at=run.claimed_at,
        state=run.state,
        audit_id=run.audit_id,
        status=schedules.run_status(store, run),
        error=run.error,
        pins=run.pins,
        drift=run.drift,
    )


@router.get("/{schedule_id}/runs", response_model=RunPage, summary="A schedule's runs")
def list_runs(
    schedule_id: ScheduleId,
    store: StoreDep,
    tenant: TenantDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many (newest).")] = 100,
) -> RunPage:
    """Runs with their audit's status, what they used (pins) and their drift."""
    row = _schedule(store, tenant, schedule_id)
    runs = schedules.runs_of(store, row.id, limit=limit, newest_first=True)
    return RunPage(items=[_run_out(store, run) for run in reversed(runs)])


@router.put(
    "/{schedule_id}/baseline",
    response_model=ScheduleOut,
    responses={**BAD_BODY, **TOO_LARGE},
    summary="Set the baseline",
)
def set_baseline(
    schedule_id: ScheduleId, body: BaselineIn, raw: RawBody, store: StoreDep, tenant: TenantDep
) -> ScheduleOut:
    """Designate the finished run every later run is also compared with."""
    body = strict_json(raw, BaselineIn)
    row = _schedule(store, tenant, schedule_id)
    if not schedules.is_finished_run(store, row.id, body.audit_id):
        raise SpecError(
            [Problem("audit_id", f"{body.audit_id!r} is not a finished run of this schedule")]
        )
    updated = schedules.set_baseline(store, row.id, tenant=tenant, audit_id=body.audit_id)
    if updated is None:  # pragma: no cover - deleted a moment ago
        raise HTTPException(404, "schedule not found")
    return ScheduleOut.of(updated)


@router.get("/{schedule_id}/deliveries", response_model=DeliveryPage, summary="Webhook deliveries")
def list_deliveries(schedule_id: ScheduleId, store: StoreDep, tenant: TenantDep) -> DeliveryPage:
    """Every notification sent to the schedule's webhook, with each attempt's outcome."""
    row = _schedule(store, tenant, schedule_id)
    return DeliveryPage(items=[DeliveryOut.of(d) for d in deliveries_of(store, row.id)])
