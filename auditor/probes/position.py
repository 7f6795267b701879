"""Position bias: each pair judged in both orders; consistency and first-slot win rate.

Zheng et al. (2023, MT-Bench) section 3.3: a judge swaps its winner when the order is swapped.
Per judge, over plain candidates (no variants) judged in both orders:
- consistency = share of pairs with the same winner in both orders (a tie twice is consistent);
- first-slot win rate = share of decisive verdicts won by the answer shown first, exact
  binomial test against 0.5 (two-sided: either slot favoured is a bias), Wilson CI;
- with ``gold``: accuracy = share of verdicts (both orders) that pick gold; accuracy in both
  orders = share of pairs right twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from auditor.probes._pairwise import by_judge, flag, judges_in_order, refs
from auditor.probes._planning import base_pairs, both_orders
from auditor.probes.base import ProbeContext
from auditor.schemas.bundle import Bundle, Comparison
from auditor.schemas.candidates import PlannedComparison
from auditor.schemas.columns import BundleColumns
from auditor.schemas.position import PositionFinding, PositionResult
from auditor.schemas.probe import ProbeResult
from auditor.stats.distributions import scipy_stats as _scipy_stats
from auditor.stats.proportions import wilson_interval

__all__ = ["PositionProbe", "position_finding"]


def _complete_pairs(comparisons: list[Comparison]) -> list[tuple[Comparison, Comparison]]:
    plain = {}
    for comparison in comparisons:
        ref_a, ref_b = refs(comparison)
        if ref_a.kind is None and ref_b.kind is None:
            plain[(comparison.item, comparison.candidate_a, comparison.candidate_b)] = comparison
    pairs = []
    for (item, first_id, second_id), first in plain.items():
        swapped = plain.get((item, second_id, first_id))
        if swapped is not None and first_id < second_id:
            pairs.append((first, swapped))
    return pairs


def position_finding(judge: str, comparisons: list[Comparison], alpha: float) -> PositionFinding:
    """The position finding of one judge from its comparisons (see module doc)."""
    pairs = _complete_pairs(comparisons)
    verdicts = [c for pair in pairs for c in pair]
    unparseable = sum(c.winner is None for c in verdicts)
    ties = sum(c.winner == "tie" for c in verdicts)
    decisive = [c for c in verdicts if c.winner not in (None, "tie")]
    first_wins = sum(c.winner == c.candidate_a for c in decisive)
    parsed_pairs = [(x, y) for x, y in pairs if x.winner is not None and y.winner is not None]
    consistent = sum(x.winner == y.winner for x, y in parsed_pairs)
    gold_pairs = [(x, y) for x, y in parsed_pairs if x.gold is not None]
    right = [(x.winner == x.gold, y.winner == x.gold) for x, y in gold_pairs]
    common: dict[str, Any] = {
        "judge": judge,
        "pairs": len(parsed_pairs),
        "ties": ties,
        "unparseable": unparseable,
        "gold_pairs": len(gold_pairs),
        "consistency": consistent / len(parsed_pairs) if parsed_pairs else None,
        "consistency_ci95": wilson_interval(consistent, len(parsed_pairs))
        if parsed_pairs
        else None,
        "accuracy": sum(r1 + r2 for r1, r2 in right) / (2 * len(right)) if right else None,
        "accuracy_both_orders": sum(r1 and r2 for r1, r2 in right) / len(right) if right else None,
    }
    if not decisive:
        reason = "no pair judged in both orders" if not pairs else "no decisive verdict"
        return PositionFinding(status="insufficient_data", reason=reason, n=0, **common)
    n = len(decisive)
    rate = first_wins / n
    p_value = float(_scipy_stats.binomtest(first_wins, n, 0.5).pvalue)
    return PositionFinding(
        n=n,
        estimate=rate,
        ci95=wilson_interval(first_wins, n),
        p_value=p_value,
        flagged=flag(p_value, alpha, rate != 0.5),
        first_slot_win_rate=rate,
        **common,
    )


class PositionProbe:
    name: ClassVar[str] = "position"
    title: ClassVar[str] = "Position bias"
    result_model: ClassVar[type[ProbeResult]] = PositionResult

    def missing_inputs(self, bundle: Bundle | BundleColumns) -> str | None:
        if not bundle.comparisons:
            return "no comparisons"
        for comparisons in by_judge(bundle.comparisons).values():
            if _complete_pairs(comparisons):
                return None
        return "no pair of plain candidates judged in both orders"

    def plan(self, spec: Any, base: Bundle, answers: Any) -> Sequence[PlannedComparison]:
        """Each judge's base pair of each item, in both orders."""
        return [
            call
            for pair in base_pairs(spec, base, answers)
            for call in both_orders(self.name, pair, pair.a, pair.b, pair.text_a, pair.text_b)
        ]

    def compute(self, context: ProbeContext) -> PositionResult:
        grouped = by_judge(context.source.comparisons)
        alpha = context.settings.alpha
        return PositionResult(
            estimate_meaning="first-slot win rate among decisive verdicts of pairs judged in "
            "both orders; 0.5 is unbiased, either direction is a bias",
            findings=[
                position_finding(judge, grouped[judge], alpha)
                for judge in judges_in_order(context.source, grouped)
            ],
        )


PROBE = PositionProbe()
