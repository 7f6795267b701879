"""Reading pairwise comparisons for the battery probes: judges, complete pairs, variant changes.

Shared by the position, verbosity, cues, repeat and injection probes so that each reads the
comparisons by the same rules: candidate ids parse with `auditor.schemas.candidates`; a variant
comparison (one side a `pad`/`cue`/`placebo` variant) is matched with its original (the same
judge, item and order with the variant replaced by its base); unparseable verdicts (winner null)
are counted and never coerced.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from auditor.schemas.bundle import Bundle, Comparison
from auditor.schemas.candidates import CandidateRef, VariantKind, parse_candidate
from auditor.schemas.columns import BundleColumns

__all__ = [
    "VariantChange",
    "by_judge",
    "flag",
    "judges_in_order",
    "variant_changes",
]


def judges_in_order(bundle: Bundle | BundleColumns, judges: Iterable[str]) -> list[str]:
    """``judges`` in the bundle's model order (unknown names last, sorted)."""
    wanted = set(judges)
    ordered = [m.name for m in bundle.models if m.name in wanted]
    return ordered + sorted(wanted.difference(ordered))


def by_judge(comparisons: Iterable[Comparison]) -> dict[str, list[Comparison]]:
    grouped: dict[str, list[Comparison]] = defaultdict(list)
    for comparison in comparisons:
        grouped[comparison.judge].append(comparison)
    return dict(grouped)


def refs(comparison: Comparison) -> tuple[CandidateRef, CandidateRef]:
    return parse_candidate(comparison.candidate_a), parse_candidate(comparison.candidate_b)


@dataclass(frozen=True)
class VariantChange:
    """A variant comparison next to its original, for one judge."""

    name: str
    """The variant's name (cue name, transform, placebo label)."""
    changed: bool | None
    """Whether the winner changed (the variant mapped to its base); None if either verdict
    was unparseable."""


def variant_changes(comparisons: list[Comparison], kind: VariantKind) -> list[VariantChange]:
    """Each comparison with exactly one side a ``kind`` variant, against its original."""
    originals = {(c.item, c.candidate_a, c.candidate_b): c for c in comparisons}
    changes = []
    for comparison in comparisons:
        a, b = refs(comparison)
        sides = [ref for ref in (a, b) if ref.kind == kind]
        if len(sides) != 1 or (a.kind not in (None, kind)) or (b.kind not in (None, kind)):
            continue
        variant = sides[0]
        key_a = str(a.base) if a.kind == kind else a.id
        key_b = str(b.base) if b.kind == kind else b.id
        original = originals.get((comparison.item, key_a, key_b))
        if original is None:
            continue
        if comparison.winner is None or original.winner is None:
            changes.append(VariantChange(name=variant.name or "", changed=None))
            continue
        mapped = variant.base if comparison.winner == variant.id else comparison.winner
        changes.append(VariantChange(name=variant.name or "", changed=mapped != original.winner))
    return changes


def flag(p_value: float | None, alpha: float, biased_direction: bool) -> bool:
    """Flag before the correction across judges x probes (the analysis adjusts p and keeps a
    flag only where the adjusted p is below alpha too)."""
    return p_value is not None and biased_direction and p_value < alpha
