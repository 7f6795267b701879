"""The Celery application (Redis broker and result backend).

Tasks are acknowledged late and re-queued when a worker dies, which is safe only because they
are idempotent: every model call is keyed and leased in the database, so a re-delivered task
makes no call that is already stored. Start a worker with ``auditor worker`` (or
``celery -A workers.app worker``) and the scheduler with ``auditor beat``.
"""

from __future__ import annotations

from celery import Celery

from auditor.schemas.tasks import SWEEP_AUDITS, SWEEP_WEBHOOKS
from auditor.settings import Settings, get_settings

__all__ = ["app", "configure"]

app = Celery("judge_auditor", include=["workers.tasks", "workers.webhooks"])


def configure(settings: Settings | None = None) -> Celery:
    """Apply settings to the app (`workers.local` runs a worker in this process on an
    in-memory broker: the same tasks and messages as on Redis)."""
    settings = settings or get_settings()
    worker = settings.worker
    transport: dict[str, float] = {"visibility_timeout": worker.visibility_timeout}
    if worker.broker_url.startswith("memory://"):
        transport["polling_interval"] = 0.01  # kombu polls an in-memory queue (default 1 s)
    app.conf.update(
        broker_url=worker.broker_url,
        result_backend=worker.result_backend,
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_transport_options=transport,
        result_backend_transport_options={"visibility_timeout": worker.visibility_timeout},
        worker_hijack_root_logger=False,
        beat_schedule={
            "sweep-stalled-audits": {
                "task": SWEEP_AUDITS,
                "schedule": worker.sweep_interval,
            },
            "sweep-webhook-deliveries": {
                "task": SWEEP_WEBHOOKS,
                "schedule": worker.sweep_interval,
            },
        },
        timezone="UTC",
        # Scheduled audits are read from the database as they change (workers/scheduler.py).
        beat_scheduler="workers.scheduler:DatabaseScheduler",
    )
    app.conf.auditor_settings = settings
    return app


configure()
