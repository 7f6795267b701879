"""Repeat consistency: how often a judge changes its winner when the same call is repeated.

The repeat is the ``placebo`` variant (`auditor.schemas.candidates`): the same comparison sent
again, made unique by a nonce so that no cache answers it. Flip rate = share of parsed repeats
whose winner differs from the original's (Wilson CI). A judge is flagged when an exact one-sided
binomial test shows its flip rate above ``REPEAT_TOLERANCE`` (CALM's consistency rate is
1 − flip rate; Ye et al. 2024).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Final

from auditor.probes._pairwise import by_judge, flag, judges_in_order, variant_changes
from auditor.probes._planning import base_pairs, original, placebo
from auditor.probes.base import ProbeContext
from auditor.schemas.bundle import Bundle, Comparison
from auditor.schemas.candidates import PlannedComparison
from auditor.schemas.columns import BundleColumns
from auditor.schemas.probe import ProbeResult
from auditor.schemas.repeat import RepeatFinding, RepeatResult
from auditor.stats.distributions import scipy_stats as _scipy_stats
from auditor.stats.proportions import wilson_interval

__all__ = ["REPEAT_TOLERANCE", "RepeatProbe", "repeat_finding"]

REPEAT_TOLERANCE: Final = 0.05
"""Flip rate between identical calls tolerated before a judge is flagged."""


def repeat_finding(
    judge: str, comparisons: list[Comparison], alpha: float, tolerance: float = REPEAT_TOLERANCE
) -> RepeatFinding:
    changes = [c.changed for c in variant_changes(comparisons, "placebo") if c.changed is not None]
    n, flips = len(changes), sum(changes)
    if n == 0:
        return RepeatFinding(
            judge=judge,
            status="insufficient_data",
            reason="no repeated comparison",
            n=0,
            flips=0,
            tolerance=tolerance,
        )
    p_value = float(_scipy_stats.binomtest(flips, n, tolerance, alternative="greater").pvalue)
    return RepeatFinding(
        judge=judge,
        n=n,
        estimate=flips / n,
        ci95=wilson_interval(flips, n),
        p_value=p_value,
        flagged=flag(p_value, alpha, flips / n > tolerance),
        flips=flips,
        tolerance=tolerance,
    )


class RepeatProbe:
    name: ClassVar[str] = "repeat"
    title: ClassVar[str] = "Repeat consistency"
    result_model: ClassVar[type[ProbeResult]] = RepeatResult

    def missing_inputs(self, bundle: Bundle | BundleColumns) -> str | None:
        if not bundle.comparisons:
            return "no comparisons"
        if not any("::placebo:" in c.candidate_a + c.candidate_b for c in bundle.comparisons):
            return "no repeated (placebo) comparisons"
        return None

    def plan(self, spec: Any, base: Bundle, answers: Any) -> Sequence[PlannedComparison]:
        """Each base pair once, and again as a placebo repeat with a nonce."""
        seed = spec.battery.seed
        return [
            call
            for pair in base_pairs(spec, base, answers)
            for call in (original(self.name, pair), placebo(self.name, pair, seed))
        ]

    def compute(self, context: ProbeContext) -> RepeatResult:
        grouped = by_judge(context.source.comparisons)
        return RepeatResult(
            estimate_meaning="flip rate between a comparison and its identical repeat; "
            f"flagged above {REPEAT_TOLERANCE:g}",
            findings=[
                repeat_finding(judge, grouped[judge], context.settings.alpha)
                for judge in judges_in_order(context.source, grouped)
            ],
        )


PROBE = RepeatProbe()
