"""Notifications: webhook deliveries of a schedule's alerts, their attempts, and the sweep that
re-sends attempts whose task messages were lost.

A delivery is stored (status ``pending``) before any message is sent; each attempt is taken by
compare-and-set on the attempt count (`claim_attempt`), so a redelivered message does not POST
twice, and recorded with its outcome (`record_attempt`). Attempt n+1 is due
``min(cap, base * 2**(n-1))`` seconds after attempt n (`backoff_delay`). A message lost with
the broker, or an attempt claimed by a worker that died, would leave the delivery pending
forever: beat's sweep (`sweep_deliveries`) finds every pending delivery whose next attempt is
overdue by more than a grace period and sends that attempt again (`overdue_deliveries`). A
delivery whose LAST attempt was taken by a worker that never reported back has no attempt left
to send: once that attempt's POST must have timed out (plus the grace), the sweep records it as
failed (`expire_lost_attempts`), so no delivery stays pending forever.
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeAlias
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from auditor.schemas.canonical import canonical_json
from auditor.services.trail import append_event
from auditor.settings import WebhookSettings
from auditor.storage.repositories import webhooks as delivery_rows
from auditor.storage.store import Store, new_id, utcnow
from auditor.storage.tables import ScheduleRow, ScheduleRunRow, WebhookDeliveryRow

__all__ = [
    "PAYLOAD_SCHEMA_VERSION",
    "Delivery",
    "WebhookTarget",
    "backoff_delay",
    "check_webhook_url",
    "claim_attempt",
    "create_delivery",
    "deliveries_of",
    "expire_lost_attempts",
    "get_delivery",
    "overdue_deliveries",
    "record_attempt",
    "resolve_webhook_url",
    "sweep_deliveries",
    "webhook_payload",
    "webhook_secret_of",
]

Delivery: TypeAlias = WebhookDeliveryRow
"""A webhook delivery as stored (body, status, attempts, history), as the functions here
return it."""

PAYLOAD_SCHEMA_VERSION: Final = "1.0"
WORKER_ACTOR: Final = "system:worker"


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): ``min(cap, base *
    2**(attempt-1))``. Example: base 2, cap 600 -> 2, 4, 8, ... 512, 600."""
    return min(cap, base * 2 ** (attempt - 1))


@dataclass(frozen=True)
class WebhookTarget:
    """Where a delivery connects: the URL's host resolved once and checked. The POST goes to
    ``address`` (with the URL's host name in ``Host`` and for TLS), never to a second
    resolution of the name, so a resolver that answers a public address for the check and a
    private one a moment later (DNS rebinding) cannot redirect it."""

    url: str
    host: str
    port: int
    address: str | None
    """The checked IP address; None when the name did not resolve (the delivery then fails as
    a connection error and is retried, resolved and checked again)."""


def resolve_webhook_url(url: str, *, allow_private: bool) -> WebhookTarget:
    """The URL's target if it is http(s) without credentials and its host resolves to public
    addresses only (unless ``allow_private``); ValueError naming the problem otherwise. Checked
    when a schedule is stored and again before every delivery (DNS answers change); a delivery
    connects to the address checked here (`WebhookTarget`)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"webhook_url: must be an http or https URL; got {url!r}")
    if parts.username or parts.password:
        raise ValueError("webhook_url: must not carry credentials (the body is signed instead)")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ValueError(f"webhook_url: the port is not a number in {url!r}") from None
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except OSError:
        # Not resolvable now (a typo, or DNS down): nothing private to reach either.
        return WebhookTarget(url, parts.hostname, port, None)
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not allow_private:
        for address in addresses:
            if not address.is_global:
                raise ValueError(
                    f"webhook_url: {parts.hostname!r} resolves to {address}, which is not a "
                    "public address (AUDITOR_WEBHOOK_ALLOW_PRIVATE allows it)"
                )
    return WebhookTarget(url, parts.hostname, port, str(addresses[0]) if addresses else None)


def check_webhook_url(url: str, *, allow_private: bool) -> str:
    """The URL if `resolve_webhook_url` accepts it; ValueError naming the problem otherwise."""
    return resolve_webhook_url(url, allow_private=allow_private).url


def webhook_payload(
    schedule: ScheduleRow, run: ScheduleRunRow, alerts: list[dict[str, Any]], delivery_id: str
) -> dict[str, Any]:
    """The JSON a webhook receives (versioned)."""
    drift = run.drift or {}
    return {
        "schema_version": PAYLOAD_SCHEMA_VERSION,
        "event": "drift.alert",
        "delivery_id": delivery_id,
        "tenant": schedule.tenant,
        "schedule": {"id": schedule.id, "name": schedule.name},
        "run": {
            "id": run.id,
            "audit_id": run.audit_id,
            "slot_at": run.slot_at.isoformat() + "Z",
            "previous_audit_id": drift.get("previous_audit_id"),
            "baseline_audit_id": drift.get("baseline_audit_id"),
        },
        "alerts": alerts,
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }


def create_delivery(
    store: Store,
    schedule: ScheduleRow,
    run: ScheduleRunRow | None,
    alerts: list[dict[str, Any]],
    *,
    settings: WebhookSettings | None = None,
) -> str:
    """Store a notification to the schedule's webhook (status ``pending``); returns its id.
    The body is the payload's canonical JSON: the bytes signed and sent on every attempt."""
    max_attempts = (settings or WebhookSettings.model_construct()).max_attempts
    delivery_id = new_id()
    payload = (
        webhook_payload(schedule, run, alerts, delivery_id)
        if run is not None
        else {
            "schema_version": PAYLOAD_SCHEMA_VERSION,
            "event": "test",
            "delivery_id": delivery_id,
            "tenant": schedule.tenant,
            "schedule": {"id": schedule.id, "name": schedule.name},
            "alerts": alerts,
            "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
    )
    body = canonical_json(payload).decode("ascii")
    delivery_rows.add_delivery(
        store,
        delivery_id=delivery_id,
        tenant=schedule.tenant,
        schedule_id=schedule.id,
        run_id=run.id if run is not None else None,
        event=str(payload["event"]),
        url=schedule.webhook_url or "",
        body=body,
        max_attempts=max_attempts,
        now=utcnow(),
    )
    return delivery_id


def deliveries_of(store: Store, schedule_id: str) -> list[WebhookDeliveryRow]:
    return delivery_rows.deliveries_of(store, schedule_id)


def claim_attempt(store: Store, delivery_id: str, attempt: int) -> WebhookDeliveryRow | None:
    """Take attempt number ``attempt`` of a pending delivery (compare-and-set on the attempt
    count, so a redelivered task message does not POST twice); None if not ours to make."""
    return delivery_rows.claim_attempt(store, delivery_id, attempt, now=utcnow())


def record_attempt(
    store: Store,
    delivery_id: str,
    *,
    attempt: int,
    status_code: int | None,
    error: str | None,
    duration_ms: float,
    outcome: str,
) -> None:
    """Record an attempt: ``outcome`` is ``delivered``, ``pending`` (will retry) or
    ``failed`` (gave up); a final outcome is appended to the audit trail in the same
    transaction, so whoever sees the outcome sees its trail entry."""
    with store.transaction() as session:
        row = delivery_rows.lock_delivery(session, delivery_id)
        if row is None:
            return
        _record_outcome(
            session,
            row,
            attempt=attempt,
            status_code=status_code,
            error=error,
            duration_ms=duration_ms,
            outcome=outcome,
        )


def _record_outcome(
    session: Session,
    row: WebhookDeliveryRow,
    *,
    attempt: int,
    status_code: int | None,
    error: str | None,
    duration_ms: float,
    outcome: str,
) -> None:
    """`record_attempt` on a row locked by the caller's transaction."""
    now = utcnow()
    delivery_rows.set_outcome(
        row,
        history=[
            *row.history,
            {
                "attempt": attempt,
                "at": now.isoformat() + "Z",
                "status_code": status_code,
                "error": error,
                "duration_ms": round(duration_ms, 1),
            },
        ],
        status=outcome,
        status_code=status_code,
        error=error,
        now=now,
        delivered=outcome == "delivered",
    )
    if outcome in ("delivered", "failed"):  # in the same transaction as the outcome
        append_event(
            session,
            tenant=row.tenant,
            action=f"webhook.{outcome}",
            object_type="webhook_delivery",
            object_id=row.id,
            object_sha256=hashlib.sha256(row.body.encode()).hexdigest(),
            detail={"schedule_id": row.schedule_id, "attempts": attempt, "status": status_code},
            actor=WORKER_ACTOR,
        )


def webhook_secret_of(store: Store, delivery: WebhookDeliveryRow) -> str | None:
    """The signing secret of the delivery's schedule (also of a schedule deleted since the
    delivery was stored: its notification still goes out signed)."""
    return delivery_rows.schedule_secret(store, delivery.schedule_id)


def get_delivery(store: Store, delivery_id: str) -> WebhookDeliveryRow | None:
    return delivery_rows.get_delivery(store, delivery_id)


def overdue_deliveries(
    store: Store, settings: WebhookSettings, *, now: datetime | None = None
) -> list[tuple[str, int]]:
    """(delivery id, attempt to make) of every pending delivery whose next attempt should
    have been made more than ``settings.sweep_grace`` seconds ago: the first attempt is due
    when the delivery is stored, attempt n+1 `backoff_delay` seconds after attempt n was
    taken. ``now`` is naive UTC (default: the clock)."""
    now = now or utcnow()
    grace = timedelta(seconds=settings.sweep_grace)
    rows = delivery_rows.pending_deliveries(store)
    overdue = []
    for delivery_id, attempts, max_attempts, created_at, updated_at in rows:
        if attempts >= max_attempts:
            continue  # its last attempt was taken; recording it ends the delivery
        if attempts == 0:
            due = created_at
        else:
            wait = backoff_delay(attempts, settings.retry_base_delay, settings.retry_max_delay)
            due = updated_at + timedelta(seconds=wait)
        if now > due + grace:
            overdue.append((delivery_id, attempts + 1))
    return overdue


LOST_ATTEMPT: Final = (
    "attempt {attempt} was taken by a worker that never reported back (stopped, or its "
    "message lost) and no attempt is left"
)


def expire_lost_attempts(
    store: Store, settings: WebhookSettings, *, now: datetime | None = None
) -> list[str]:
    """Record as failed every pending delivery whose last allowed attempt was taken but never
    recorded, ``settings.timeout + settings.sweep_grace`` seconds after it was taken (its POST
    has timed out by then). Returns their ids; each gets a history entry and a
    ``webhook.failed`` trail entry, as a failed attempt does. ``now`` is naive UTC."""
    now = now or utcnow()
    cutoff = now - timedelta(seconds=settings.timeout + settings.sweep_grace)
    candidates = delivery_rows.lost_attempt_candidates(store, taken_before=cutoff)
    expired = []
    for delivery_id in candidates:
        with store.transaction() as session:
            row = delivery_rows.lock_delivery(session, delivery_id)
            if row is None or row.status != "pending" or row.updated_at >= cutoff:
                continue  # recorded (or taken again) since it was read
            if len(row.history) >= row.attempts:
                continue  # its last attempt was recorded: not lost
            _record_outcome(
                session,
                row,
                attempt=row.attempts,
                status_code=None,
                error=LOST_ATTEMPT.format(attempt=row.attempts),
                duration_ms=0.0,
                outcome="failed",
            )
        expired.append(delivery_id)
    return expired


def sweep_deliveries(
    store: Store, settings: WebhookSettings, *, now: datetime | None = None
) -> list[tuple[str, int]]:
    """Beat's sweep: `expire_lost_attempts`, then the (delivery id, attempt) of every attempt
    to send again (`overdue_deliveries`)."""
    now = now or utcnow()
    expire_lost_attempts(store, settings, now=now)
    return overdue_deliveries(store, settings, now=now)
