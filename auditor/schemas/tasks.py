"""The names of the Celery tasks: the message contract between the senders (the API, the CLI,
beat) and the workers, spelled here once. Senders use ``send_task(NAME, args=[...])`` so they
need not import the workers (nor litellm)."""

from __future__ import annotations

from typing import Final

__all__ = [
    "ADVANCE_AUDIT",
    "DELIVER_WEBHOOK",
    "RUN_CALLS",
    "START_AUDIT",
    "SWEEP_AUDITS",
    "SWEEP_WEBHOOKS",
]

START_AUDIT: Final = "auditor.start"
"""args: [audit_id]. Starts (or resumes) an audit; idempotent."""
ADVANCE_AUDIT: Final = "auditor.advance"
"""args: [audit_id]. Moves an audit on from what the database holds; idempotent."""
RUN_CALLS: Final = "auditor.run_calls"
"""args: [audit_id, keys, lease token]. One leased batch of model calls."""
SWEEP_AUDITS: Final = "auditor.sweep"
"""No args (beat). Nudges every active audit."""
DELIVER_WEBHOOK: Final = "auditor.webhook.deliver"
"""args: [delivery_id, attempt]. One attempt of a webhook delivery."""
SWEEP_WEBHOOKS: Final = "auditor.webhook.sweep"
"""No args (beat). Re-sends webhook attempts whose messages were lost."""
