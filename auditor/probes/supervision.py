"""Judges as supervisors (Zhou et al., Nature 2024: supervisors miss errors, also on easy
items): each judge's verdicts against the three-way truth of the answers it judged.

Per judge (self-judgments and unparseable verdicts left out; the latter counted):
- false approval = share of verdict 1 on incorrect answers;
- false rejection = share of verdict 0 on correct answers;
- avoidant approval = share of verdict 1 on avoidant answers (refusals graded as correct);
each overall and per quantile bin of difficulty (``settings.difficulty_bins``) with Wilson 95%
intervals. Whether false approval changes with difficulty: the Cochran–Armitage trend test over
the bins (scores 0..B−1, easiest first), and the easiest-minus-hardest difference with
Newcombe's interval. A judge is flagged when the trend is significant (p < alpha) and false
approval rises on easy items (z < 0): it misses errors exactly where a reader trusts it most.

Example: 6 of 20 incorrect easy answers approved and 1 of 20 hard ones: easiest − hardest =
0.25.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, ClassVar, Final

from auditor.probes._outcomes import Difficulty, Truth, difficulty_of, rate, truth_of
from auditor.probes.base import ProbeContext
from auditor.schemas.bundle import Bundle, Outcome, primary_view
from auditor.schemas.columns import BundleColumns
from auditor.schemas.probe import ProbeResult
from auditor.schemas.supervision import (
    JudgeSupervision,
    SupervisionBin,
    SupervisionFinding,
    SupervisionResult,
)
from auditor.stats.difficulty import cochran_armitage_trend
from auditor.stats.proportions import newcombe_difference

__all__ = ["SupervisionProbe", "judge_supervision"]

MEANING: Final = (
    "judge's false approval (verdict 1 on incorrect answers) in the easiest difficulty bin "
    "minus the hardest; p: Cochran-Armitage trend over bins; flagged when it rises on easy items"
)

_EVENT: dict[Outcome, int] = {"incorrect": 1, "correct": 0, "avoidant": 1}
"""The verdict that is the event counted for each outcome (false approval, false rejection,
avoidant approval)."""


def judge_supervision(
    judge: str,
    verdicts: Sequence[tuple[str, str, int | None]],
    truth: Truth,
    difficulty: Difficulty,
) -> JudgeSupervision:
    """One judge's supervision from its (candidate, item, verdict) triples."""
    n_bins = len(difficulty.bins)
    # counts[outcome][bin] = [events, trials]; bin -1 collects items without a difficulty
    counts: dict[Outcome, dict[int, list[int]]] = {
        o: defaultdict(lambda: [0, 0]) for o in ("incorrect", "correct", "avoidant")
    }
    invalid = 0
    valid = 0
    for candidate, item, verdict in verdicts:
        if candidate == judge:
            continue
        outcome = truth.outcomes.get((candidate, item))
        if outcome is None:
            continue
        if verdict is None:
            invalid += 1
            continue
        valid += 1
        cell = counts[outcome][difficulty.bin_of.get(item, -1)]
        cell[0] += verdict == _EVENT[outcome]
        cell[1] += 1

    def total(outcome: Outcome) -> Any:
        cells = counts[outcome].values()
        return rate(sum(c[0] for c in cells), sum(c[1] for c in cells))

    def in_bin(outcome: Outcome, b: int) -> Any:
        k, n = counts[outcome].get(b, [0, 0])
        return rate(k, n)

    by_bin = [
        SupervisionBin(
            index=b,
            false_approval=in_bin("incorrect", b),
            false_rejection=in_bin("correct", b),
            avoidant_approval=in_bin("avoidant", b),
        )
        for b in range(n_bins)
    ]
    approvals = [row.false_approval for row in by_bin]
    trend = cochran_armitage_trend([r.k for r in approvals], [r.n for r in approvals])
    difference = ci = None
    if n_bins >= 2 and approvals[0].n and approvals[-1].n:
        easy, hard = approvals[0], approvals[-1]
        difference = easy.k / easy.n - hard.k / hard.n
        ci = newcombe_difference(easy.k, easy.n, hard.k, hard.n)
    return JudgeSupervision(
        judge=judge,
        n_verdicts=valid,
        invalid_verdicts=invalid,
        false_approval=total("incorrect"),
        false_rejection=total("correct"),
        avoidant_approval=total("avoidant"),
        by_bin=by_bin,
        trend_z=trend.z,
        trend_p=trend.p_value,
        trend_reason=trend.reason,
        easy_minus_hard=difference,
        easy_minus_hard_ci95=ci,
    )


def _finding(row: JudgeSupervision, alpha: float) -> SupervisionFinding:
    if row.trend_p is None or row.easy_minus_hard is None:
        return SupervisionFinding(
            judge=row.judge,
            status="insufficient_data",
            reason=row.trend_reason or "no incorrect answers in the easiest or hardest bin",
            n=row.false_approval.n,
            false_approval=row.false_approval.rate,
        )
    return SupervisionFinding(
        judge=row.judge,
        n=row.false_approval.n,
        estimate=row.easy_minus_hard,
        ci95=row.easy_minus_hard_ci95,
        p_value=row.trend_p,
        flagged=row.trend_p < alpha and row.trend_z is not None and row.trend_z < 0,
        false_approval=row.false_approval.rate,
    )


class SupervisionProbe:
    name: ClassVar[str] = "supervision"
    title: ClassVar[str] = "Judges as supervisors: false approval by difficulty"
    result_model: ClassVar[type[ProbeResult]] = SupervisionResult

    def missing_inputs(self, bundle: Bundle | BundleColumns) -> str | None:
        if not bundle.labels:
            return "no three-way labels (human, grader or planted)"
        if not bundle.n_verdicts:
            return "no verdicts"
        return None

    def plan(self, spec: Any, base: Bundle, answers: Any) -> Sequence[Any]:
        return ()

    def compute(self, context: ProbeContext) -> SupervisionResult:
        bundle = primary_view(context.bundle)
        truth = truth_of(bundle)
        difficulty = difficulty_of(bundle, context.settings.difficulty_bins)
        if difficulty.source is None:
            return SupervisionResult(
                status="insufficient_data", reason=difficulty.reason, estimate_meaning=MEANING
            )
        grouped: dict[str, list[tuple[str, str, int | None]]] = defaultdict(list)
        for v in bundle.verdicts:
            grouped[v.judge].append((v.candidate, v.item, v.verdict))
        position = {m.name: i for i, m in enumerate(bundle.models)}
        judges = sorted(grouped, key=lambda j: (position.get(j, len(position)), j))
        rows = [judge_supervision(j, grouped[j], truth, difficulty) for j in judges]
        return SupervisionResult(
            estimate_meaning=MEANING,
            truth_source=truth.source,
            difficulty_source=difficulty.source,
            difficulty_bins=context.settings.difficulty_bins,
            bins=difficulty.bins,
            judges=rows,
            findings=[_finding(row, context.settings.alpha) for row in rows],
        )


PROBE = SupervisionProbe()
