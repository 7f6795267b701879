"""The documented size limits of every field that crosses the boundary (API bodies, bundles,
specs). A value over its limit is refused where it enters (422 over HTTP, exit 2 in the CLI),
naming the field; nothing longer ever reaches storage, whose name columns hold 200 characters.

Free texts (questions, options, answers, judge replies) have no limit of their own: the
request's size limit bounds them (``AUDITOR_MAX_BODY_BYTES`` for a JSON body, 8 MB a line for a
streamed JSONL upload, ``AUDITOR_MAX_STREAM_BYTES`` for the stream as a whole). Numbers must be
finite: ``NaN``, ``Infinity`` and literals that overflow a double (``1e400``) are refused.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_CANDIDATE_ID_LENGTH", "MAX_NAME_LENGTH", "MAX_URL_LENGTH"]

MAX_NAME_LENGTH: Final = 200
"""Longest identifier or name: item id, model name, provider, family, category, annotator, a
spec's model string, display name and audit name."""

MAX_CANDIDATE_ID_LENGTH: Final = 2 * MAX_NAME_LENGTH
"""Longest answer id of a pairwise comparison: a model name and a synthetic variant suffix
(``<base>::<kind>:<name>``, see `auditor.schemas.candidates`)."""

MAX_URL_LENGTH: Final = 2000
"""Longest URL (a model's ``api_base``, a webhook)."""
