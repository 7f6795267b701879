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
from auditor.schemas.columns import BundleColumns
from auditor.schemas.probe import ProbeResult
from auditor.schemas.self_preference import SelfPreferenceFinding, SelfPreferenceResult
from auditor.stats.stratified import cmh_test, mantel_haenszel_difference

__all__ = ["SelfPreferenceProbe", "kin_of", "self_preference_finding"]


def kin_of(bundle: Bundle | BundleColumns, judge: str) -> set[str]:
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
    return _finding(judge, kin, tables, alpha)


def _column_correctness(columns: BundleColumns) -> np.ndarray:
    """`_correctness` on columns: a (models x items) array, 1 = correct, 0 = incorrect, -1 =
    no output with a choice (or probabilities). Like the dict, the last such output of a
    (model, item) in bundle order decides. Only the (model, item) pairs some verdict judged
    are filled (the only ones read), so a bundle of millions of outputs costs no temporary
    per output beyond one mask."""
    n_models, n_items = len(columns.models), len(columns.items)
    judged = np.zeros((n_models, n_items), dtype=bool)
    judged[columns.verdict_candidate, columns.verdict_item] = True
    rows = np.flatnonzero(judged[columns.output_model, columns.output_item])
    choice = columns.chosen_options(rows)
    known = rows[choice >= 0]
    known_choice = choice[choice >= 0]
    keys = columns.output_model[known].astype(np.int64) * n_items + columns.output_item[known]
    # the last output of each key: the first in reversed order
    _, first_reversed = np.unique(keys[::-1], return_index=True)
    last = known.size - 1 - first_reversed
    correct = np.full(n_models * n_items, -1, dtype=np.int8)
    gold = _gold(columns)[columns.output_item[known[last]]]
    correct[keys[last]] = (known_choice[last] == gold).astype(np.int8)
    return correct.reshape(n_models, n_items)


def _gold(columns: BundleColumns) -> np.ndarray:
    return np.fromiter((i.gold for i in columns.items), np.int64, len(columns.items))


def _kin_codes(columns: BundleColumns, judge: int) -> np.ndarray:
    """Mask over the models: the judge (code ``judge``) and the models of its family."""
    families = [m.family for m in columns.models]
    own = families[judge]
    kin = np.array([bool(own) and f == own for f in families], dtype=bool)
    kin[judge] = True
    return kin


def _column_finding(
    columns: BundleColumns, judge: int, alpha: float, correct: np.ndarray
) -> SelfPreferenceFinding:
    """`self_preference_finding` on columns (the same tables, counted with numpy)."""
    kin = _kin_codes(columns, judge)
    mine = np.flatnonzero((columns.verdict_judge == judge) & (columns.verdict_value >= 0))
    candidates = columns.verdict_candidate[mine]
    truth = correct[candidates, columns.verdict_item[mine]]
    known = truth >= 0
    stratum = 1 - truth[known].astype(np.int64)
    group = np.where(kin[candidates[known]], 0, 1)
    outcome = 1 - columns.verdict_value[mine][known].astype(np.int64)
    counts = np.bincount(stratum * 4 + group * 2 + outcome, minlength=8)
    tables = counts.reshape(2, 2, 2).astype(np.float64)
    names = [m.name for m in columns.models]
    return _finding(names[judge], {names[k] for k in np.flatnonzero(kin)}, tables, alpha)


def _finding(judge: str, kin: set[str], tables: np.ndarray, alpha: float) -> SelfPreferenceFinding:
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

    def missing_inputs(self, bundle: Bundle | BundleColumns) -> str | None:
        if not bundle.n_verdicts:
            return "no pointwise verdicts"
        if not bundle.n_outputs:
            return "no multiple-choice outputs (ground-truth correctness)"
        if isinstance(bundle, BundleColumns):
            judge_codes = np.unique(bundle.verdict_judge)
            n_judges = int(judge_codes.size)
            any_kin = any(
                bool(
                    _kin_codes(bundle, int(j))[
                        bundle.verdict_candidate[bundle.verdict_judge == j]
                    ].any()
                )
                for j in judge_codes
            )
        else:
            n_judges = len({v.judge for v in bundle.verdicts})
            any_kin = any(v.candidate in kin_of(bundle, v.judge) for v in bundle.verdicts)
        if not any_kin:
            return f"no verdict of a judge on its own or same-family answers ({n_judges} judges)"
        return None

    def plan(self, spec: Any, base: Bundle, answers: Any) -> Sequence[Any]:
        """No calls of its own (it reads the pointwise verdicts or human labels)."""
        return ()

    def compute(self, context: ProbeContext) -> SelfPreferenceResult:
        columns = context.columns
        if columns is not None:
            names = [m.name for m in columns.models]
            codes = {names[int(j)]: int(j) for j in np.unique(columns.verdict_judge)}
            correct = _column_correctness(columns)
            findings = [
                _column_finding(columns, codes[judge], context.settings.alpha, correct)
                for judge in judges_in_order(columns, codes)
            ]
        else:
            bundle = context.bundle
            by_output = _correctness(bundle)
            findings = [
                self_preference_finding(bundle, judge, context.settings.alpha, by_output)
                for judge in judges_in_order(bundle, {v.judge for v in bundle.verdicts})
            ]
        return SelfPreferenceResult(
            estimate_meaning="pass rate of own and same-family answers minus others' at equal "
            "correctness (Mantel-Haenszel); positive = favours its kin",
            findings=findings,
        )


PROBE = SelfPreferenceProbe()
