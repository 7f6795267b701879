"""The Celery application (Redis broker and result backend).

Tasks are acknowledged late and re-queued when a worker dies, which is safe only because they
are idempotent: every model call is keyed and leased in the database, so a re-delivered task
makes no call that is already stored. Start a worker with ``auditor worker`` (or
``celery -A workers.app worker``) and the scheduler with ``auditor beat``.
"""

from __future__ import annotations

from celery import Celery

from auditor.settings import Settings, get_settings

__all__ = ["app", "configure"]

app = Celery("judge_auditor", include=["workers.tasks", "workers.webhooks"])


def configure(settings: Settings | None = None, *, eager: bool = False) -> Celery:
    """Apply settings to the app; ``eager`` runs every task inline in this process."""
    settings = settings or get_settings()
    app.conf.update(
        broker_url="memory://" if eager else settings.broker_url,
        # kombu's Redis transport with a channel that survives a broker outage (broker.py)
        broker_transport=(
            "workers.broker:RedisTransport"
            if not eager and settings.broker_url.startswith("redis://")
            else None
        ),
        result_backend=None if eager else settings.result_backend,
        task_always_eager=eager,
        task_eager_propagates=True,
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_transport_options={"visibility_timeout": settings.visibility_timeout},
        result_backend_transport_options={"visibility_timeout": settings.visibility_timeout},
        worker_hijack_root_logger=False,
        beat_schedule={
            "sweep-stalled-audits": {
                "task": "auditor.sweep",
                "schedule": settings.sweep_interval,
            },
        },
        timezone="UTC",
        # Scheduled audits are read from the database as they change (workers/scheduler.py).
        beat_scheduler="workers.scheduler:DatabaseScheduler",
    )
    app.conf.auditor_settings = settings
    return app


configure()
