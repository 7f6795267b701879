"""The webhook delivery sweep (issue 9, defect 4): a delivery whose task message was lost (a
broker restart, a worker killed mid-POST) is sent again by beat's sweep instead of staying
pending forever. The clock is injected: nothing here sleeps.

Reference: the backoff schedule of the module doc of `workers.webhooks`
(attempt n+1 is due ``min(cap, base * 2**(n-1))`` seconds after attempt n), plus the grace.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from auditor.services import notifications
from auditor.services.schedules import create_schedule
from auditor.settings import WebhookSettings
from auditor.storage.store import Store

SETTINGS = WebhookSettings(
    max_attempts=3, retry_base_delay=2.0, retry_max_delay=600.0, sweep_grace=30.0
)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'hooks.sqlite'}")
    store.migrate()
    return store


def new_delivery(store: Store, settings: WebhookSettings = SETTINGS) -> tuple[str, datetime]:
    schedule = create_schedule(
        store,
        tenant="acme",
        name="nightly",
        spec={"name": "x"},
        cron="0 3 * * *",
        webhook_url="http://127.0.0.1:9/hooks",
        webhook_secret="whsec_0123456789abcdef",
    )
    delivery_id = notifications.create_delivery(
        store, schedule, None, [{"judge": "a-1"}], settings=settings
    )
    row = notifications.get_delivery(store, delivery_id)
    assert row is not None and row.status == "pending" and row.attempts == 0
    return delivery_id, row.created_at


def test_a_delivery_whose_first_message_was_lost_is_sent_by_the_sweep(store: Store) -> None:
    delivery_id, created = new_delivery(store)
    grace = timedelta(seconds=SETTINGS.sweep_grace)
    assert notifications.overdue_deliveries(store, SETTINGS, now=created) == []
    early = created + grace - timedelta(seconds=1)
    assert notifications.overdue_deliveries(store, SETTINGS, now=early) == []
    late = created + grace + timedelta(seconds=1)
    assert notifications.overdue_deliveries(store, SETTINGS, now=late) == [(delivery_id, 1)]


def test_a_retry_whose_message_was_lost_is_due_after_its_backoff(store: Store) -> None:
    delivery_id, _ = new_delivery(store)
    assert notifications.claim_attempt(store, delivery_id, 1) is not None
    notifications.record_attempt(
        store,
        delivery_id,
        attempt=1,
        status_code=503,
        error="HTTP 503",
        duration_ms=3.0,
        outcome="pending",
    )
    row = notifications.get_delivery(store, delivery_id)
    assert row is not None
    due = row.updated_at + timedelta(seconds=2.0 + SETTINGS.sweep_grace)  # base * 2**0 + grace
    before = due - timedelta(seconds=1)
    assert notifications.overdue_deliveries(store, SETTINGS, now=before) == []
    after = due + timedelta(seconds=1)
    assert notifications.overdue_deliveries(store, SETTINGS, now=after) == [(delivery_id, 2)]
    # The sweep's attempt is taken by compare-and-set like any other: once, whoever sends it.
    assert notifications.claim_attempt(store, delivery_id, 2) is not None
    assert notifications.claim_attempt(store, delivery_id, 2) is None


def test_an_attempt_claimed_by_a_worker_that_died_is_made_again(store: Store) -> None:
    delivery_id, _ = new_delivery(store)
    assert notifications.claim_attempt(store, delivery_id, 1) is not None  # then the worker dies
    row = notifications.get_delivery(store, delivery_id)
    assert row is not None and row.attempts == 1 and row.history == []
    later = row.updated_at + timedelta(seconds=2.0 + SETTINGS.sweep_grace + 1)
    assert notifications.overdue_deliveries(store, SETTINGS, now=later) == [(delivery_id, 2)]


@pytest.mark.parametrize("outcome", ["delivered", "failed"])
def test_finished_deliveries_are_never_swept(store: Store, outcome: str) -> None:
    delivery_id, created = new_delivery(store)
    assert notifications.claim_attempt(store, delivery_id, 1) is not None
    notifications.record_attempt(
        store,
        delivery_id,
        attempt=1,
        status_code=200 if outcome == "delivered" else 404,
        error=None if outcome == "delivered" else "HTTP 404",
        duration_ms=3.0,
        outcome=outcome,
    )
    much_later = created + timedelta(days=30)
    assert notifications.overdue_deliveries(store, SETTINGS, now=much_later) == []


def test_beat_sweeps_webhook_deliveries() -> None:
    from auditor.schemas.tasks import SWEEP_WEBHOOKS
    from workers.app import app

    tasks = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert SWEEP_WEBHOOKS in tasks
    app.loader.import_default_modules()  # what a worker does at start: the app's `include`
    assert SWEEP_WEBHOOKS in app.tasks


def test_a_last_attempt_whose_worker_never_reported_back_ends_as_failed(store: Store) -> None:
    """The last allowed attempt, taken by a worker that died: nothing is left to send, so the
    sweep records it as failed once its POST has surely timed out (timeout + grace)."""
    from auditor.services.trail import list_events, verify_store

    delivery_id, _ = new_delivery(store)
    for attempt in (1, 2):
        assert notifications.claim_attempt(store, delivery_id, attempt) is not None
        notifications.record_attempt(
            store,
            delivery_id,
            attempt=attempt,
            status_code=503,
            error="HTTP 503",
            duration_ms=3.0,
            outcome="pending",
        )
    assert notifications.claim_attempt(store, delivery_id, 3) is not None  # then it dies
    taken = notifications.get_delivery(store, delivery_id)
    assert taken is not None and taken.attempts == SETTINGS.max_attempts == 3
    lost_after = timedelta(seconds=SETTINGS.timeout + SETTINGS.sweep_grace)
    still_running = taken.updated_at + lost_after - timedelta(seconds=1)
    assert notifications.sweep_deliveries(store, SETTINGS, now=still_running) == []
    row = notifications.get_delivery(store, delivery_id)
    assert row is not None and row.status == "pending"

    lost = taken.updated_at + lost_after + timedelta(seconds=1)
    assert notifications.sweep_deliveries(store, SETTINGS, now=lost) == []
    row = notifications.get_delivery(store, delivery_id)
    assert row is not None and row.status == "failed"
    assert [h["attempt"] for h in row.history] == [1, 2, 3]
    assert row.last_error == (
        "attempt 3 was taken by a worker that never reported back (stopped, or its message "
        "lost) and no attempt is left"
    )
    failed = list_events(store, tenant="acme", action="webhook.failed")
    assert [(e.object_id, e.detail["attempts"]) for e in failed] == [(delivery_id, 3)]
    assert verify_store(store).ok
    # Swept again much later: nothing more happens.
    much_later = lost + timedelta(days=1)
    assert notifications.expire_lost_attempts(store, SETTINGS, now=much_later) == []
    assert len(list_events(store, tenant="acme", action="webhook.failed")) == 1


def test_a_recorded_last_attempt_is_not_taken_for_a_lost_one(store: Store) -> None:
    delivery_id, _ = new_delivery(store)
    for attempt in (1, 2, 3):
        assert notifications.claim_attempt(store, delivery_id, attempt) is not None
        notifications.record_attempt(
            store,
            delivery_id,
            attempt=attempt,
            status_code=503,
            error="HTTP 503",
            duration_ms=3.0,
            outcome="pending" if attempt < 3 else "failed",
        )
    row = notifications.get_delivery(store, delivery_id)
    assert row is not None and row.status == "failed" and row.last_error == "HTTP 503"
    later = row.updated_at + timedelta(days=1)
    assert notifications.expire_lost_attempts(store, SETTINGS, now=later) == []


def test_beats_sweep_task_ends_a_lost_last_attempt(store: Store) -> None:
    """The worker's sweep task runs the same sweep (expiry included), on the configured store."""
    from sqlalchemy import update

    from auditor.storage.tables import WebhookDeliveryRow
    from tests.support.settings import make_settings
    from workers.app import configure
    from workers.webhooks import sweep_webhooks

    settings = make_settings(database_url=store.url, webhook_max_attempts=1)
    configure(settings, eager=True)
    delivery_id, _ = new_delivery(store, settings.webhook)
    assert notifications.claim_attempt(store, delivery_id, 1) is not None  # then it dies
    hour_ago = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)
    with store.session() as session, session.begin():
        session.execute(
            update(WebhookDeliveryRow)
            .where(WebhookDeliveryRow.id == delivery_id)
            .values(updated_at=hour_ago, created_at=hour_ago)
        )
    assert sweep_webhooks() == 0  # nothing to send again ...
    row = notifications.get_delivery(store, delivery_id)
    assert row is not None and row.status == "failed"  # ... and not pending forever
