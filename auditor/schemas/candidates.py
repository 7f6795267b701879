"""Candidate ids in pairwise comparisons, and the synthetic variants the battery derives.

A candidate id is either a plain id (usually the answering model's name, e.g. ``gpt-4o``) or a
variant of one, written ``<base>::<kind>:<name>``:

- ``gpt-4o::pad:restate`` — the answer of ``gpt-4o`` padded by the ``restate`` transform
  (content unchanged; verbosity probe);
- ``gpt-4o::cue:authority`` — the answer with an authority cue added (cues probe);
- ``gpt-4o::placebo:1`` — the very same answer, judged again in a call made unique by a nonce
  (the judge's own noise floor; cues and repeat probes);
- ``::inject:ignore`` — an injected null or adversarial answer with no base (injection probe).

Nothing but ``::`` separates base and variant, so model names may hold ``/`` and ``:``
(``openai/gpt-4o``) but not ``::``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Final, Literal, get_args

__all__ = [
    "VARIANT_KINDS",
    "CandidateRef",
    "PlannedComparison",
    "VariantKind",
    "parse_candidate",
    "variant_id",
]

VariantKind = Literal["pad", "cue", "placebo", "inject"]
VARIANT_KINDS: Final = get_args(VariantKind)
_SEPARATOR: Final = "::"


@dataclass(frozen=True)
class CandidateRef:
    """A parsed candidate id."""

    id: str
    base: str | None
    """The plain candidate this one derives from (None for injections)."""
    kind: VariantKind | None
    """None for a plain candidate."""
    name: str | None
    """The transform, cue or injection name (or the placebo's run label)."""


@lru_cache(maxsize=65_536)
def parse_candidate(candidate: str) -> CandidateRef:
    """Parse ``candidate``; ValueError naming it when the variant part is malformed."""
    if not candidate:
        raise ValueError("candidate: must be a non-empty id; got ''")
    if _SEPARATOR not in candidate:
        return CandidateRef(id=candidate, base=candidate, kind=None, name=None)
    base, _, variant = candidate.partition(_SEPARATOR)
    kind, colon, name = variant.partition(":")
    if kind not in VARIANT_KINDS or not colon or not name or _SEPARATOR in variant:
        raise ValueError(
            f"candidate: a variant id is '<base>::<kind>:<name>' with kind one of "
            f"{', '.join(VARIANT_KINDS)}; got {candidate!r}"
        )
    if kind == "inject" and base:
        raise ValueError(
            f"candidate: an injection has no base ('::inject:<name>'); got {candidate!r}"
        )
    if kind != "inject" and not base:
        raise ValueError(f"candidate: a {kind} variant needs a base candidate; got {candidate!r}")
    return CandidateRef(id=candidate, base=base or None, kind=kind, name=name)  # type: ignore[arg-type]


def variant_id(base: str | None, kind: VariantKind, name: str) -> str:
    """The id of a variant: ``variant_id("gpt-4o", "pad", "restate")`` = ``gpt-4o::pad:restate``."""
    candidate = f"{base or ''}{_SEPARATOR}{kind}:{name}"
    parse_candidate(candidate)
    return candidate


@dataclass(frozen=True)
class PlannedComparison:
    """One pairwise judge call a battery probe needs (pure planning; the services send it)."""

    probe: str
    judge: str
    item: str
    candidate_a: str
    candidate_b: str
    text_a: str
    text_b: str
    nonce: str | None = None
    """Set for a placebo repeat: appended to the prompt so that no cache answers it."""
