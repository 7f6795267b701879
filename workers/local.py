"""Run an audit inside this process: Celery in eager mode (no broker, no worker processes).

The same tasks run as on a real worker, in order, inline; this is the embedded default of
`auditor demo` and `auditor run`.
"""

from __future__ import annotations

from auditor.settings import Settings

__all__ = ["run_local"]


def run_local(settings: Settings, audit_id: str) -> None:
    """Run an audit to its end in this process (returns when it has succeeded or failed)."""
    from workers.app import configure

    configure(settings, eager=True)
    from workers.tasks import start_audit

    start_audit.delay(audit_id)
