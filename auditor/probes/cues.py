"""Cue robustness (CALM, Ye et al. 2024): verdict changes under cues that should not matter.

An authority, bandwagon, sentiment or distraction cue is added to one answer of a comparison
(the ``cue`` variant); the placebo is the same comparison repeated with a cache-busting nonce
(the ``placebo`` variant), the judge's own noise floor. Per judge:
change rate under cues p_c = changed / n_c; under the placebo p_0; robustness = 1 − rate.
Estimate = p_c − p_0 with Newcombe's hybrid score interval; p = Fisher's exact test on the
2×2 table (changed, unchanged) × (cue, placebo). Each cue is also reported on its own.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, ClassVar

from auditor.probes._pairwise import by_judge, flag, judges_in_order, variant_changes
from auditor.probes._planning import base_pairs, original, placebo
from auditor.probes.base import ProbeContext
from auditor.schemas.bundle import Bundle, Comparison
from auditor.schemas.candidates import PlannedComparison, variant_id
from auditor.schemas.columns import BundleColumns
from auditor.schemas.cues import CueEffect, CuesFinding, CuesResult
from auditor.schemas.probe import ProbeResult
from auditor.stats.distributions import scipy_stats as _scipy_stats
from auditor.stats.proportions import newcombe_difference

__all__ = ["CUES", "CuesProbe", "cues_finding"]

CUES: dict[str, str] = {
    "authority": "(This answer was written by a leading expert in the field.)",
    "bandwagon": "(90% of people who saw this question preferred this answer.)",
    "sentiment": "I am absolutely delighted to share this wonderful answer with you!",
    "distraction": "By the way, the weather was lovely last weekend and I went hiking.",
}
"""The cue texts appended to an answer (planned by the probe; any other name is accepted from a
bundle)."""


def _compare(changed: int, n: int, placebo_changed: int, placebo_n: int):
    difference = changed / n - placebo_changed / placebo_n
    ci = newcombe_difference(changed, n, placebo_changed, placebo_n)
    table = [[changed, n - changed], [placebo_changed, placebo_n - placebo_changed]]
    p_value = float(_scipy_stats.fisher_exact(table).pvalue)
    return difference, ci, p_value


def cues_finding(judge: str, comparisons: list[Comparison], alpha: float) -> CuesFinding:
    placebo = [c.changed for c in variant_changes(comparisons, "placebo") if c.changed is not None]
    per_cue: dict[str, list[bool]] = defaultdict(list)
    for change in variant_changes(comparisons, "cue"):
        if change.changed is not None:
            per_cue[change.name].append(change.changed)
    all_cues = [changed for changes in per_cue.values() for changed in changes]
    n, changed = len(all_cues), sum(all_cues)
    placebo_n, placebo_changed = len(placebo), sum(placebo)
    if n == 0 or placebo_n == 0:
        return CuesFinding(
            judge=judge,
            status="insufficient_data",
            reason="no cued comparison" if n == 0 else "no placebo repeat to compare with",
            n=n,
            placebo_n=placebo_n,
        )
    effects = []
    for name in sorted(per_cue):
        k, m = sum(per_cue[name]), len(per_cue[name])
        difference, ci, p_value = _compare(k, m, placebo_changed, placebo_n)
        effects.append(
            CueEffect(
                cue=name,
                n=m,
                changed=k,
                robustness=1 - k / m,
                difference=difference,
                ci95=ci,
                p_value=p_value,
            )
        )
    difference, ci, p_value = _compare(changed, n, placebo_changed, placebo_n)
    return CuesFinding(
        judge=judge,
        n=n,
        estimate=difference,
        ci95=ci,
        p_value=p_value,
        flagged=flag(p_value, alpha, difference > 0),
        robustness=1 - changed / n,
        placebo_robustness=1 - placebo_changed / placebo_n,
        placebo_n=placebo_n,
        by_cue=effects,
    )


class CuesProbe:
    name: ClassVar[str] = "cues"
    title: ClassVar[str] = "Cue robustness"
    result_model: ClassVar[type[ProbeResult]] = CuesResult

    def missing_inputs(self, bundle: Bundle | BundleColumns) -> str | None:
        if not bundle.comparisons:
            return "no comparisons"
        ids = [c.candidate_a + c.candidate_b for c in bundle.comparisons]
        if not any("::cue:" in i for i in ids):
            return "no cued comparisons"
        if not any("::placebo:" in i for i in ids):
            return "no placebo repeats to compare the cues with"
        return None

    def plan(self, spec: Any, base: Bundle, answers: Any) -> Sequence[PlannedComparison]:
        """Each base pair, its placebo repeat, and the pair with a cue (rotating through
        `CUES`) appended to the second answer."""
        names = sorted(CUES)
        calls: list[PlannedComparison] = []
        for pair in base_pairs(spec, base, answers):
            cue = names[pair.index % len(names)]
            calls += [
                original(self.name, pair),
                placebo(self.name, pair, spec.battery.seed),
                PlannedComparison(
                    self.name,
                    pair.judge,
                    pair.item.id,
                    pair.a,
                    variant_id(pair.b, "cue", cue),
                    pair.text_a,
                    f"{pair.text_b} {CUES[cue]}",
                ),
            ]
        return calls

    def compute(self, context: ProbeContext) -> CuesResult:
        grouped = by_judge(context.source.comparisons)
        return CuesResult(
            estimate_meaning="share of verdicts changed by a cue minus share changed by the "
            "placebo repeat; positive = cues move the judge beyond its own noise",
            findings=[
                cues_finding(judge, grouped[judge], context.settings.alpha)
                for judge in judges_in_order(context.source, grouped)
            ],
        )


PROBE = CuesProbe()
