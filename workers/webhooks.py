"""Webhook notifications: signed JSON POSTs, retried with backoff, every attempt recorded.

The receiver gets the stored JSON body as it is, with these headers::

    Content-Type: application/json
    X-Auditor-Event: drift.alert
    X-Auditor-Delivery: <delivery id>          (the same on every retry: deduplicate on it)
    X-Auditor-Timestamp: <unix seconds of this attempt>
    X-Auditor-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>

To verify: recompute the HMAC with the schedule's webhook secret over the timestamp, a dot and
the raw body bytes; compare in constant time; refuse timestamps far from now (replays). See
`verify_signature`.

Delivery: attempt n is a task message; a 2xx answer delivers, a 408, 429 or 5xx answer, a
timeout or a connection error is retried after ``base * 2**(n-1)`` seconds (capped), up to the
configured number of attempts; any other answer fails at once. Each attempt is taken by
compare-and-set on the delivery's attempt count, so a redelivered message does not POST twice.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import httpx

from auditor.schemas.tasks import DELIVER_WEBHOOK, SWEEP_WEBHOOKS
from auditor.services.notifications import (
    WebhookTarget,
    backoff_delay,
    claim_attempt,
    record_attempt,
    resolve_webhook_url,
    sweep_deliveries,
    webhook_secret_of,
)
from auditor.settings import Settings
from auditor.storage.store import Store
from workers.app import app

__all__ = [
    "RETRYABLE_STATUS",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "backoff_delay",
    "deliver_webhook",
    "pinned_request",
    "sign_payload",
    "sweep_webhooks",
    "verify_signature",
]

log = logging.getLogger(__name__)

SIGNATURE_HEADER: Final = "X-Auditor-Signature"
TIMESTAMP_HEADER: Final = "X-Auditor-Timestamp"
DELIVERY_HEADER: Final = "X-Auditor-Delivery"
EVENT_HEADER: Final = "X-Auditor-Event"
SIGNATURE_VERSION: Final = "v1"
RETRYABLE_STATUS: Final = frozenset({408, 425, 429, 500, 502, 503, 504})
DEFAULT_TOLERANCE_SECONDS: Final = 300


def sign_payload(secret: str, timestamp: int, body: bytes) -> str:
    """``v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>``."""
    message = str(int(timestamp)).encode("ascii") + b"." + body
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def verify_signature(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    now: float | None = None,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """What a receiver does: the signature matches and the timestamp is recent."""
    try:
        moment = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - moment) > tolerance:
        return False
    return hmac.compare_digest(sign_payload(secret, moment, body), signature)


def pinned_request(target: WebhookTarget) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The URL, extra headers and httpx extensions that send a POST for ``target.url`` to the
    checked ``target.address``: the address in the URL, the host name in ``Host`` and, for
    https, as the TLS server name (SNI and certificate check), so nothing resolves it again."""
    if target.address is None:
        raise ValueError(f"{target.host!r} did not resolve: there is no address to pin")
    parts = urlsplit(target.url)
    literal = f"[{target.address}]" if ":" in target.address else target.address
    pinned = urlunsplit(parts._replace(netloc=f"{literal}:{target.port}"))
    default_port = 443 if parts.scheme == "https" else 80
    host = target.host if target.port == default_port else f"{target.host}:{target.port}"
    if ":" in target.host:  # an IPv6 literal as the URL's host
        host = f"[{target.host}]" + ("" if target.port == default_port else f":{target.port}")
    extensions: dict[str, Any] = {}
    if parts.scheme == "https":
        extensions["sni_hostname"] = target.host
    return pinned, {"Host": host}, extensions


def _post(
    target: WebhookTarget,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
) -> tuple[int | None, str | None]:
    if target.address is None:
        return None, f"ConnectError: {target.host!r} does not resolve"
    url, host, extensions = pinned_request(target)
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
            response = client.post(
                url, content=body, headers={**headers, **host}, extensions=extensions
            )
    except httpx.HTTPError as error:
        return None, f"{type(error).__name__}: {error}"[:500]
    if 200 <= response.status_code < 300:
        return response.status_code, None
    return response.status_code, f"HTTP {response.status_code}: {response.text[:200]}"


_stores: dict[str, Store] = {}


def _store(url: str) -> Store:
    if url not in _stores:
        _stores[url] = Store(url)
    return _stores[url]


def _settings() -> Settings:
    settings: Settings = app.conf.auditor_settings
    return settings


@app.task(name=SWEEP_WEBHOOKS, ignore_result=True)
def sweep_webhooks() -> int:
    """Re-send every attempt whose task message was lost (beat, every sweep interval)."""
    overdue = sweep_deliveries(_store(_settings().database.url), _settings().webhook)
    for delivery_id, attempt in overdue:
        deliver_webhook.delay(delivery_id, attempt)
    return len(overdue)


@app.task(name=DELIVER_WEBHOOK, ignore_result=True)
def deliver_webhook(delivery_id: str, attempt: int = 1) -> str:
    """Make attempt ``attempt`` of a delivery; schedule the next one if it may be retried."""
    settings = _settings().webhook
    store = _store(_settings().database.url)
    delivery = claim_attempt(store, delivery_id, attempt)
    if delivery is None:
        return "skipped"  # delivered, given up, or this attempt was already made
    secret = webhook_secret_of(store, delivery)
    started = time.perf_counter()
    status_code: int | None
    error: str | None
    try:
        target = resolve_webhook_url(delivery.url, allow_private=settings.allow_private)
    except ValueError as refused:
        status_code, error, retryable = None, str(refused), False
    else:
        if not secret:
            status_code, error, retryable = None, "the schedule has no webhook secret", False
        else:
            body = delivery.body.encode("utf-8")
            timestamp = int(time.time())
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "judge-auditor-webhooks/1",
                EVENT_HEADER: delivery.event,
                DELIVERY_HEADER: delivery.id,
                TIMESTAMP_HEADER: str(timestamp),
                SIGNATURE_HEADER: sign_payload(secret, timestamp, body),
            }
            status_code, error = _post(target, body, headers, settings.timeout)
            retryable = status_code is None or status_code in RETRYABLE_STATUS
    duration_ms = (time.perf_counter() - started) * 1000.0
    if error is None:
        outcome = "delivered"
    elif retryable and attempt < delivery.max_attempts:
        outcome = "pending"
    else:
        outcome = "failed"
    record_attempt(
        store,
        delivery_id,
        attempt=attempt,
        status_code=status_code,
        error=error,
        duration_ms=duration_ms,
        outcome=outcome,
    )
    if outcome == "pending":
        delay = backoff_delay(attempt, settings.retry_base_delay, settings.retry_max_delay)
        log.info(
            "webhook %s attempt %d failed (%s); retry in %.1f s", delivery_id, attempt, error, delay
        )
        deliver_webhook.apply_async((delivery_id, attempt + 1), countdown=delay)
    return outcome
