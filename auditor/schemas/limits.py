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

__all__ = [
    "MAX_CANDIDATE_ID_LENGTH",
    "MAX_NAME_LENGTH",
    "MAX_RESAMPLES",
    "MAX_SEED",
    "MAX_SIMULATED_CELLS",
    "MAX_SIMULATED_ITEMS",
    "MAX_SIMULATED_MODELS",
    "MAX_URL_LENGTH",
]

MAX_NAME_LENGTH: Final = 200
"""Longest identifier or name: item id, model name, provider, family, category, annotator, a
spec's model string, display name and audit name."""

MAX_CANDIDATE_ID_LENGTH: Final = 2 * MAX_NAME_LENGTH
"""Longest answer id of a pairwise comparison: a model name and a synthetic variant suffix
(``<base>::<kind>:<name>``, see `auditor.schemas.candidates`)."""

MAX_URL_LENGTH: Final = 2000
"""Longest URL (a model's ``api_base``, a webhook)."""

MAX_RESAMPLES: Final = 1_000_000
"""Most bootstrap resamples or permutations an analysis may ask for (the default is 10,000)."""

MAX_SEED: Final = 2**63 - 1
"""Seeds are non-negative 64-bit integers (numpy refuses negative seeds)."""

MAX_SIMULATED_ITEMS: Final = 100_000
MAX_SIMULATED_MODELS: Final = 1_000
"""A simulated world's items and models (all families together)."""

MAX_SIMULATED_CELLS: Final = 50_000_000
"""Models x items x options of a simulated world: its probability array (400 MB of float64)
is built whole, so a larger world is refused instead of exhausting a worker's memory."""
