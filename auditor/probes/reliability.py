"""Reliability of models' free-form answers across difficulty (Zhou et al., "Larger and more
instructable language models become less reliable", Nature 2024; SCIENCE.md section 4).

Every labelled answer is correct, avoidant or incorrect (`auditor.probes._outcomes` reads the
truth and the difficulty). Per model: the share of each outcome with Wilson 95% intervals,
overall and per quantile bin of difficulty (``settings.difficulty_bins``, default 5);
Kendall's tau-b between an item's difficulty and the answer being incorrect (concordance: a
reliable model errs on hard items); the incorrect share in the easiest bin with its interval
(above 0: there is no "safe zone").

Across models with a known size (`models[].params`): Kendall's tau-b of size with the avoidant
share, the incorrect share, and the ultracrepidarian share incorrect / (incorrect + avoidant).
Zhou et al. found avoidance falling with scale while the remaining failures become errors;
this is reported (``scale.flagged``) when the avoidance tau is negative and the
ultracrepidarian tau positive, each with p < alpha.

Example: a model with 3 correct, 1 avoidant and 1 incorrect answer has shares 0.6, 0.2, 0.2.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Final

import numpy as np

from auditor.probes._outcomes import Difficulty, Truth, difficulty_of, rate, truth_of
from auditor.probes.base import ProbeContext
from auditor.schemas.bundle import OUTCOMES, Bundle, Outcome
from auditor.schemas.columns import BundleColumns
from auditor.schemas.probe import ProbeResult
from auditor.schemas.reliability import (
    ModelReliability,
    OutcomeRates,
    ReliabilityFinding,
    ReliabilityResult,
    ScaleTrend,
)
from auditor.stats.difficulty import kendall_tau

__all__ = ["MIN_MODELS_FOR_SCALE", "ReliabilityProbe", "outcome_rates", "scale_trend"]

MIN_MODELS_FOR_SCALE: Final = 4
"""Fewer models with a size than this: no trend with scale is computed."""

MEANING: Final = (
    "share of a model's answers that are incorrect in the easiest difficulty bin (above 0: no "
    "safe zone); kendall_tau: concordance of difficulty and error"
)


def outcome_rates(outcomes: Sequence[Outcome]) -> OutcomeRates:
    """Shares of each outcome with Wilson intervals."""
    n = len(outcomes)
    counts = {o: sum(1 for x in outcomes if x == o) for o in OUTCOMES}
    return OutcomeRates(
        n=n,
        correct=rate(counts["correct"], n),
        avoidant=rate(counts["avoidant"], n),
        incorrect=rate(counts["incorrect"], n),
    )


def _model_reliability(
    model: str, params: float | None, truth: Truth, difficulty: Difficulty
) -> ModelReliability | None:
    answers = [
        (difficulty.value_of[item], difficulty.bin_of[item], outcome)
        for (candidate, item), outcome in truth.outcomes.items()
        if candidate == model and item in difficulty.bin_of
    ]
    if not answers:
        return None
    values = np.array([a[0] for a in answers])
    errors = np.array([a[2] == "incorrect" for a in answers], dtype=float)
    tau = kendall_tau(values, errors)
    by_bin = [outcome_rates([a[2] for a in answers if a[1] == b.index]) for b in difficulty.bins]
    easiest = by_bin[0]
    return ModelReliability(
        model=model,
        params=params,
        overall=outcome_rates([a[2] for a in answers]),
        by_bin=by_bin,
        kendall_tau=tau.tau,
        kendall_p=tau.p_value,
        kendall_reason=tau.reason,
        easiest_bin_error=easiest.incorrect,
    )


def scale_trend(models: Sequence[ModelReliability], alpha: float) -> ScaleTrend | None:
    """Kendall's tau-b of model size with the outcome shares; see the module docstring."""
    sized = [m for m in models if m.params is not None and m.overall.n > 0]
    if len(sized) < MIN_MODELS_FOR_SCALE:
        return None
    size = np.array([m.params for m in sized], dtype=float)
    avoidant = np.array([m.overall.avoidant.rate for m in sized], dtype=float)
    incorrect = np.array([m.overall.incorrect.rate for m in sized], dtype=float)
    failures = avoidant + incorrect
    keep = failures > 0
    ultra = kendall_tau(size[keep], incorrect[keep] / failures[keep])
    avoid = kendall_tau(size, avoidant)
    err = kendall_tau(size, incorrect)
    flagged = (
        avoid.tau is not None
        and avoid.p_value is not None
        and ultra.tau is not None
        and ultra.p_value is not None
        and avoid.tau < 0
        and avoid.p_value < alpha
        and ultra.tau > 0
        and ultra.p_value < alpha
    )
    if flagged:
        conclusion = (
            "larger models avoid less, and a growing share of their failures are errors rather "
            "than avoidance (errors take the place of refusals)"
        )
    else:
        conclusion = "no significant shift from avoidance to error with model size"
    return ScaleTrend(
        n_models=len(sized),
        avoidance_tau=avoid.tau,
        avoidance_p=avoid.p_value,
        incorrect_tau=err.tau,
        incorrect_p=err.p_value,
        ultracrepidarian_tau=ultra.tau,
        ultracrepidarian_p=ultra.p_value,
        flagged=flagged,
        conclusion=conclusion,
    )


class ReliabilityProbe:
    name: ClassVar[str] = "reliability"
    title: ClassVar[str] = "Reliability across difficulty (correct, avoidant, incorrect)"
    result_model: ClassVar[type[ProbeResult]] = ReliabilityResult

    def missing_inputs(self, bundle: Bundle | BundleColumns) -> str | None:
        if not bundle.labels:
            return "no three-way labels (human, grader or planted)"
        return None

    def plan(self, spec: Any, base: Bundle, answers: Any) -> Sequence[Any]:
        return ()

    def compute(self, context: ProbeContext) -> ReliabilityResult:
        bundle = context.bundle
        truth = truth_of(bundle)
        difficulty = difficulty_of(bundle, context.settings.difficulty_bins)
        if difficulty.source is None:
            return ReliabilityResult(
                status="insufficient_data", reason=difficulty.reason, estimate_meaning=MEANING
            )
        params = {m.name: m.params for m in bundle.models}
        candidates = sorted({c for c, _ in truth.outcomes}, key=_order(bundle))
        models = [
            row
            for c in candidates
            if (row := _model_reliability(c, params.get(c), truth, difficulty)) is not None
        ]
        findings = [
            ReliabilityFinding(
                judge=row.model,
                n=row.easiest_bin_error.n,
                estimate=row.easiest_bin_error.rate,
                ci95=row.easiest_bin_error.ci95,
                kendall_tau=row.kendall_tau,
                kendall_p=row.kendall_p,
            )
            for row in models
        ]
        return ReliabilityResult(
            estimate_meaning=MEANING,
            truth_source=truth.source,
            difficulty_source=difficulty.source,
            difficulty_bins=context.settings.difficulty_bins,
            bins=difficulty.bins,
            models=models,
            scale=scale_trend(models, context.settings.alpha),
            unlabelled_conflicts=truth.conflicts,
            findings=findings,
        )


def _order(bundle: Bundle) -> Any:
    position = {m.name: i for i, m in enumerate(bundle.models)}
    return lambda name: (position.get(name, len(position)), name)


PROBE = ReliabilityProbe()
