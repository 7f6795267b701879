"""Webhook notifications (workers/webhooks.py) to a real HTTP receiver on 127.0.0.1: signed
with HMAC-SHA256 over timestamp and body (checked here with hmac from the standard library),
retried with backoff by a real worker on Redis, every attempt recorded."""

from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from auditor.schemas.tasks import DELIVER_WEBHOOK
from auditor.services import schedules
from auditor.services.notifications import check_webhook_url, create_delivery, get_delivery
from auditor.services.trail import list_events, verify_store
from auditor.settings import WebhookSettings
from auditor.storage.store import Store
from auditor.storage.tables import ScheduleRow
from tests.support.services import postgres_database, redis_databases, service_env, worker_process
from tests.support.settings import make_settings
from tests.support.webhooks import SECRET, Receiver, assert_signed

ALERTS = [{"judge": "atlas-1", "reason": "flag_appeared", "delta": 0.62}]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


def schedule_with_webhook(store: Store, url: str) -> ScheduleRow:
    return schedules.create_schedule(
        store,
        tenant="acme",
        name="nightly",
        spec={"name": "x"},
        cron="0 3 * * *",
        webhook_url=url,
        webhook_secret=SECRET,
    )


@dataclass
class Hooks:
    """A SQLite store and the settings the webhook tasks run with (set as a deployment's)."""

    store: Store
    url: str

    def configure(self, **webhook: Any) -> WebhookSettings:
        from workers.app import configure

        settings = make_settings(database_url=self.url, **webhook)
        configure(settings, eager=True)
        return settings.webhook


@pytest.fixture
def hooks(tmp_path: Path) -> Iterator[Hooks]:
    """Webhook tasks called in this process (a task is a function) on a SQLite store."""
    from workers.app import configure

    url = f"sqlite:///{tmp_path / 'hooks.sqlite'}"
    store = Store(url)
    store.migrate()
    yield Hooks(store, url)
    configure()


def test_the_receiver_gets_a_correctly_signed_payload(hooks: Hooks, receiver: Receiver) -> None:
    from workers.webhooks import deliver_webhook

    store = hooks.store
    webhook = hooks.configure(webhook_allow_private=True, webhook_max_attempts=3)
    schedule = schedule_with_webhook(store, receiver.url)
    delivery_id = create_delivery(store, schedule, None, ALERTS, settings=webhook)
    assert deliver_webhook(delivery_id) == "delivered"
    assert len(receiver.requests) == 1
    payload = assert_signed(receiver.requests[0], delivery_id)
    assert payload["delivery_id"] == delivery_id and payload["alerts"] == ALERTS
    assert payload["schedule"] == {"id": schedule.id, "name": "nightly"}
    assert payload["schema_version"] == "1.0" and payload["tenant"] == "acme"
    delivery = get_delivery(store, delivery_id)
    assert delivery is not None
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    assert delivery.delivered_at is not None
    delivered = list_events(store, tenant="acme", action="webhook.delivered")
    assert [e.object_id for e in delivered] == [delivery_id]
    assert delivered[0].object_sha256 == hashlib.sha256(receiver.requests[0]["body"]).hexdigest()
    assert verify_store(store).ok
    # a redelivered message for an attempt already made sends nothing
    assert deliver_webhook(delivery_id, 1) == "skipped"
    assert len(receiver.requests) == 1


def test_a_client_error_is_not_retried_and_a_private_address_is_refused(
    hooks: Hooks, receiver: Receiver
) -> None:
    from workers.webhooks import deliver_webhook

    store = hooks.store
    webhook = hooks.configure(webhook_allow_private=True, webhook_max_attempts=3)
    receiver.codes = [400]
    schedule = schedule_with_webhook(store, receiver.url)
    refused = create_delivery(store, schedule, None, ALERTS, settings=webhook)
    assert deliver_webhook(refused) == "failed"
    delivery = get_delivery(store, refused)
    assert delivery is not None and (delivery.status, delivery.attempts) == ("failed", 1)
    assert delivery.last_error == "HTTP 400: receiver failed"
    webhook = hooks.configure(webhook_allow_private=False, webhook_max_attempts=3)
    private = create_delivery(store, schedule, None, ALERTS, settings=webhook)
    assert deliver_webhook(private) == "failed"
    delivery = get_delivery(store, private)
    assert delivery is not None and "127.0.0.1" in (delivery.last_error or "")
    assert len(receiver.requests) == 1  # nothing was sent to the private address
    with pytest.raises(ValueError, match="not a public address"):
        check_webhook_url("http://127.0.0.1:9/x", allow_private=False)
    with pytest.raises(ValueError, match="http or https"):
        check_webhook_url("file:///etc/passwd", allow_private=True)
    with pytest.raises(ValueError, match="credentials"):
        check_webhook_url("https://user:pw@example.org/x", allow_private=True)


def test_a_delivery_connects_to_the_address_it_checked_not_a_rebound_one(
    hooks: Hooks, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name answers a public address for the check and the receiver's
    private address (127.0.0.1) a moment later. The POST must go to the address checked.
    No connection is made: httpx's transport records the request it was asked to send (the
    public address is never contacted), and the private receiver must get nothing."""
    import socket

    import httpx

    from workers.webhooks import deliver_webhook

    public = "93.184.215.14"
    port = int(receiver.url.split(":")[2].split("/")[0])
    real_getaddrinfo = socket.getaddrinfo
    answers: list[str] = []

    def rebinding(host: str, *args: Any, **kwargs: Any) -> Any:
        if host != "hooks.rebind.test":
            return real_getaddrinfo(host, *args, **kwargs)
        answer = public if not answers else "127.0.0.1"
        answers.append(answer)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answer, port))]

    sent: list[httpx.Request] = []

    def record(_transport: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        # A URL holding the name would make the transport resolve it again (127.0.0.1 now).
        sent.append(request)
        return httpx.Response(204, request=request)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", record)
    webhook = hooks.configure(webhook_allow_private=False, webhook_max_attempts=1)
    url = f"https://hooks.rebind.test:{port}/hooks/audit"
    schedule = schedule_with_webhook(hooks.store, url)
    delivery_id = create_delivery(hooks.store, schedule, None, ALERTS, settings=webhook)
    assert deliver_webhook(delivery_id) == "delivered"
    assert answers == [public]  # resolved once, for the check
    assert [request.url.host for request in sent] == [public]
    assert sent[0].headers["host"] == f"hooks.rebind.test:{port}"
    assert sent[0].extensions["sni_hostname"] == "hooks.rebind.test"  # TLS checks the name
    assert receiver.requests == []  # the private address got nothing


@pytest.mark.services
def test_a_failing_receiver_is_retried_with_backoff_by_a_real_worker(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    webhook = make_settings(webhook_max_attempts=4).webhook
    with redis_databases() as (broker, backend), postgres_database() as url:
        store = Store(url)
        store.migrate()
        env = service_env(
            url,
            broker,
            backend,
            AUDITOR_WEBHOOK_ALLOW_PRIVATE="true",
            AUDITOR_WEBHOOK_RETRY_BASE_DELAY="0.25",
        )
        client = Celery(broker=broker)
        schedule = schedule_with_webhook(store, receiver.url)
        receiver.codes = [500, 503, 200]  # fails twice, then accepts
        recovering = create_delivery(store, schedule, None, ALERTS, settings=webhook)
        with worker_process(env) as worker:
            client.send_task(DELIVER_WEBHOOK, args=[recovering])
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                delivery = get_delivery(store, recovering)
                if delivery is not None and delivery.status != "pending":
                    break
                time.sleep(0.1)
            # a receiver that never recovers: given up after 4 attempts
            receiver.codes = [500] * 4
            given_up = create_delivery(store, schedule, None, ALERTS, settings=webhook)
            client.send_task(DELIVER_WEBHOOK, args=[given_up])
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                final = get_delivery(store, given_up)
                if final is not None and final.status != "pending":
                    break
                time.sleep(0.1)
        assert delivery is not None and delivery.status == "delivered", worker.log()[-3000:]
        assert delivery.attempts == 3
        assert [a["status_code"] for a in delivery.history] == [500, 503, 200]
        first_three = receiver.requests[:3]
        for request in first_three:  # each attempt signed afresh with its own timestamp
            assert assert_signed(request, recovering)["delivery_id"] == recovering
        gaps = [b["at"] - a["at"] for a, b in itertools.pairwise(first_three)]
        assert gaps[0] >= 0.25 - 0.05 and gaps[1] >= 0.5 - 0.05  # 0.25 s, then 0.5 s
        assert gaps[1] > gaps[0]
        assert final is not None and (final.status, final.attempts) == ("failed", 4)
        assert final.last_error == "HTTP 500: receiver failed"
        assert len(receiver.requests) == 3 + 4
        actions = [e.action for e in list_events(store, tenant="acme")]
        assert actions.count("webhook.delivered") == 1 and actions.count("webhook.failed") == 1
        assert verify_store(store).ok
