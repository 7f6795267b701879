"""Self / family preference: does a judge pass its own and same-family answers more often than
others' answers of the same ground-truth correctness?

Panickssery et al. (2024); SCIENCE.md section 4. From a judge's pointwise verdicts (1 = judged
correct): kin = the judge itself and the models of its family (``ModelInfo.family``). Strata =
the candidate's ground-truth multiple-choice correctness on the item (``choice`` or the argmax of
``probs`` against ``gold``). Per stratum the 2×2 table (kin, others) × (judged correct, not);
estimate = Mantel–Haenszel difference of pass rates, kin minus others (Greenland–Robins CI),
p = Cochran–Mantel–Haenszel test (`auditor.stats.stratified`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from auditor.probes._pairwise import flag, judges_in_order
from auditor.probes.base import ProbeContext
from auditor.schemas.bundle import Bundle
from auditor.schemas.probe import ProbeResult
from auditor.schemas.self_preference import SelfPreferenceFinding, SelfPreferenceResult
from auditor.stats.stratified import cmh_test, mantel_haenszel_difference

__all__ = ["SelfPreferenceProbe", "kin_of", "self_preference_finding"]


def kin_of(bundle: Bundle, judge: str) -> set[str]:
    """The judge and the models of its family (just the judge when its family is unknown)."""
    family = {m.name: m.family for m in bundle.models}
    own = family.get(judge)
    return {judge} | ({name for name, f in family.items() if f == own} if own else set())


def _correctness(bundle: Bundle) -> dict[tuple[str, str], bool]:
    gold = {item.id: item.gold for item in bundle.items}
    correct = {}
    for output in bundle.outputs:
        choice = output.choice
        if choice is None and (probs := output.probs) is not None:
            choice = max(range(len(probs)), key=probs.__getitem__)  # np.argmax: ties to lowest
        if choice is not None and output.item in gold:
            correct[(output.model, output.item)] = choice == gold[output.item]
    return correct


def _rate(table: np.ndarray, row: int) -> float | None:
    total = table[row].sum()
    return float(table[row, 0] / total) if total else None


def self_preference_finding(
    bundle: Bundle, judge: str, alpha: float, correct: dict[tuple[str, str], bool] | None = None
) -> SelfPreferenceFinding:
    correct = _correctness(bundle) if correct is None else correct
    kin = kin_of(bundle, judge)
    tables = np.zeros((2, 2, 2))  # stratum (correct, incorrect) x (kin, other) x (pass, fail)
    for verdict in bundle.verdicts:
        truth = correct.get((verdict.candidate, verdict.item))
        if verdict.judge != judge or verdict.verdict is None or truth is None:
            continue
        tables[0 if truth else 1, 0 if verdict.candidate in kin else 1, 1 - verdict.verdict] += 1
    own_n, other_n = int(tables[:, 0].sum()), int(tables[:, 1].sum())
    common: dict[str, Any] = {
        "judge": judge,
        "own_verdicts": own_n,
        "other_verdicts": other_n,
        "own_candidates": sorted(kin),
        "pass_rate_own_correct": _rate(tables[0], 0),
        "pass_rate_other_correct": _rate(tables[0], 1),
        "pass_rate_own_incorrect": _rate(tables[1], 0),
        "pass_rate_other_incorrect": _rate(tables[1], 1),
    }
    try:
        difference = mantel_haenszel_difference(tables)
        test = cmh_test(tables)
    except ValueError as error:
        reason = (
            "no verdict on the judge's own or same-family answers"
            if own_n == 0
            else "no verdict on other candidates' answers"
            if other_n == 0
            else str(error).removeprefix("tables: ")
        )
        return SelfPreferenceFinding(
            status="insufficient_data", reason=reason, n=own_n + other_n, **common
        )
    return SelfPreferenceFinding(
        n=own_n + other_n,
        estimate=difference.estimate,
        ci95=difference.ci95,
        p_value=test.p_value,
        flagged=flag(test.p_value, alpha, difference.estimate > 0),
        **common,
    )


class SelfPreferenceProbe:
    name: ClassVar[str] = "self_preference"
    title: ClassVar[str] = "Self and family preference"
    result_model: ClassVar[type[ProbeResult]] = SelfPreferenceResult

    def missing_inputs(self, bundle: Bundle) -> str | None:
        if not bundle.verdicts:
            return "no pointwise verdicts"
        if not bundle.outputs:
            return "no multiple-choice outputs (ground-truth correctness)"
        judges = {v.judge for v in bundle.verdicts}
        if not any(v.candidate in kin_of(bundle, v.judge) for v in bundle.verdicts):
            return f"no verdict of a judge on its own or same-family answers ({len(judges)} judges)"
        return None

    def plan(self, spec: Any, base: Bundle, answers: Any) -> Sequence[Any]:
        """No calls of its own (it reads the pointwise verdicts or human labels)."""
        return ()

    def compute(self, context: ProbeContext) -> SelfPreferenceResult:
        bundle = context.bundle
        correct = _correctness(bundle)
        judges = judges_in_order(bundle, {v.judge for v in bundle.verdicts})
        return SelfPreferenceResult(
            estimate_meaning="pass rate of own and same-family answers minus others' at equal "
            "correctness (Mantel-Haenszel); positive = favours its kin",
            findings=[
                self_preference_finding(bundle, judge, context.settings.alpha, correct)
                for judge in judges
            ],
        )


PROBE = SelfPreferenceProbe()
