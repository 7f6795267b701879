"""How the API hands an audit to the workers: one Celery message by task name.

The API process never imports ``workers.tasks`` (it imports litellm, which is slow and not
needed here): a Celery app of its own, configured with the broker only, sends the task by name.
"""

from __future__ import annotations

from typing import Protocol

from celery import Celery

from auditor.schemas.tasks import START_AUDIT

__all__ = ["CeleryDispatcher", "Dispatcher"]

_SOCKET_TIMEOUT_SECONDS = 5.0


class Dispatcher(Protocol):
    """Starts audits on the workers and says whether the broker answers."""

    def start_audit(self, audit_id: str) -> None: ...

    def ping(self) -> None:
        """Return if the broker answers; raise otherwise."""
        ...


class CeleryDispatcher:
    """Sends ``auditor.start`` to the workers through the configured broker."""

    def __init__(self, broker_url: str, *, visibility_timeout: int) -> None:
        self.celery = Celery("judge_auditor_api", broker=broker_url, set_as_current=False)
        self.celery.conf.update(
            task_serializer="json",
            accept_content=["json"],
            task_ignore_result=True,
            broker_connection_retry_on_startup=False,
            broker_transport_options={
                # As the workers' app: a message must not be redelivered sooner than they expect.
                "visibility_timeout": visibility_timeout,
                "socket_connect_timeout": _SOCKET_TIMEOUT_SECONDS,
                "socket_timeout": _SOCKET_TIMEOUT_SECONDS,
            },
        )

    def start_audit(self, audit_id: str) -> None:
        self.celery.send_task(START_AUDIT, args=[audit_id])

    def ping(self) -> None:
        with self.celery.connection_for_write() as connection:
            connection.ensure_connection(
                max_retries=1, interval_start=0, interval_step=0, timeout=_SOCKET_TIMEOUT_SECONDS
            )
