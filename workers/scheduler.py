"""Celery beat's scheduler for scheduled audits: the schedules live in the database.

`DatabaseScheduler` is celery's `PersistentScheduler` (the static entries of
``beat_schedule``, such as the sweep of stalled audits, keep working as before) plus, every
``AUDITOR_SCHEDULE_POLL_INTERVAL`` seconds, a read of the schedules table: schedules created,
changed, paused or deleted through the API or the CLI take effect at the next read, with no
restart. Due runs are claimed by compare-and-set in the database and turned into audits
(`auditor.services.governance.start_due_runs`); beat then sends ``auditor.start`` for each.

Beat being down loses nothing: the claim is computed from the schedule's ``next_due_at``, so
on the first read after a restart each schedule that missed slots runs once, for the latest
of them. A message lost between the claim and a worker (broker restart) is recovered by the
sweep, which nudges every queued audit.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery.beat import PersistentScheduler

from auditor.services.governance import GovernanceSettings, start_due_runs
from auditor.storage.store import Store

__all__ = ["START_TASK", "DatabaseScheduler"]

log = logging.getLogger(__name__)

START_TASK = "auditor.start"


class DatabaseScheduler(PersistentScheduler):
    """Static entries from ``beat_schedule`` plus the database's schedules (read as they
    change)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._settings = GovernanceSettings()
        self._database: Store | None = None
        self._next_poll = 0.0
        super().__init__(*args, **kwargs)

    @property
    def database(self) -> Store:
        if self._database is None:
            url = getattr(self.app.conf, "auditor_settings", None)
            self._database = Store(
                url.database_url if url is not None else self._settings.database_url
            )
        return self._database

    def poll_database(self) -> list[str]:
        """Start every due scheduled run; returns the audits sent to the workers."""
        audit_ids = start_due_runs(self.database)
        for audit_id in audit_ids:
            self.app.send_task(START_TASK, args=[audit_id])
            log.info("scheduled audit %s sent", audit_id)
        return audit_ids

    def tick(self, *args: Any, **kwargs: Any) -> float:
        delay: float = super().tick(*args, **kwargs)
        now = time.monotonic()
        if now >= self._next_poll:
            try:
                self.poll_database()
            except Exception:  # the database may be down for a moment: try at the next poll
                log.exception("reading the schedules failed")
            self._next_poll = time.monotonic() + self._settings.schedule_poll_interval
        return max(0.0, min(delay, self._next_poll - time.monotonic()))
