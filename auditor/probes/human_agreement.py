"""Agreement of a judge with human annotators, on pairwise comparisons and on pointwise verdicts.

Pairwise: units are a judge's parsed comparisons that carry human choices. Each choice is read
by slot ("a", "b", "tie"), so a judge and its humans are compared on the same label set.
Pointwise: units are a judge's parsed verdicts (primary template) on answers that humans
labelled (bundle ``labels`` with source ``human``); a label reads 1 when ``correct`` and 0 when
``avoidant`` or ``incorrect``, the judge's verdict 1/0 as given.
- Cohen's kappa of the judge against the human majority (units without a strict majority are
  left out), Fleiss–Cohen–Everitt standard error (`auditor.stats.agreement.cohen_kappa`);
- Krippendorff's alpha (nominal) over the judge and every annotator, missing choices allowed
  (the ``krippendorff`` package, Castro 2017);
- pointwise only: TPR and TNR of the judge against the human majority (Wilson CIs), the judge's
  apparent pass rate over ALL its parsed verdicts, and that rate corrected for its TPR/TNR
  (Rogan & Gladen 1978) with a percentile bootstrap CI (`auditor.stats.agreement`).
A judge is flagged when its kappa is significantly below ``KAPPA_FLOOR`` (one-sided z-test with
the non-null standard error): it does not reach moderate agreement (Landis & Koch 1977).

One finding per judge: pointwise when the judge has human-labelled verdicts (the audit's own
protocol), else pairwise; every (judge, measure) finding is in the result's ``by_measure``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, ClassVar, Final

import numpy as np

from auditor.probes._pairwise import by_judge, flag, judges_in_order
from auditor.probes.base import ProbeContext
from auditor.schemas.bundle import Bundle, Comparison, Label, Verdict
from auditor.schemas.columns import BundleColumns
from auditor.schemas.human_agreement import HumanAgreementFinding, HumanAgreementResult
from auditor.schemas.probe import ProbeResult
from auditor.stats.agreement import (
    binary_rates,
    cohen_kappa,
    rogan_gladen,
    rogan_gladen_bootstrap,
)
from auditor.stats.distributions import norm_cdf

__all__ = [
    "KAPPA_FLOOR",
    "HumanAgreementProbe",
    "human_agreement_finding",
    "pointwise_agreement_finding",
]

KAPPA_FLOOR: Final = 0.4
"""Agreement below this kappa ("moderate", Landis & Koch 1977) is flagged when significant."""
_SLOT_CODES: Final = {"a": 0, "b": 1, "tie": 2}


def _slot(comparison: Comparison, choice: str | None) -> str | None:
    if choice is None:
        return None
    if choice == "tie":
        return "tie"
    return "a" if choice == comparison.candidate_a else "b"


def _majority(labels: list[str]) -> str | None:
    counts = Counter(labels).most_common()
    if not counts or (len(counts) > 1 and counts[0][1] == counts[1][1]):
        return None
    return counts[0][0]


def krippendorff_alpha(rows: list[list[Any]], codes: dict[Any, int] = _SLOT_CODES) -> float | None:
    """Nominal alpha of raters (rows) over units (columns); None when undefined."""
    import krippendorff  # only this probe needs it

    data = np.array([[np.nan if v is None else codes[v] for v in row] for row in rows], dtype=float)
    if (
        np.isfinite(data).sum(axis=0).max(initial=0) < 2
        or len(np.unique(data[np.isfinite(data)])) < 2
    ):
        return None
    value = float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))
    return value if np.isfinite(value) else None


def human_agreement_finding(
    judge: str, comparisons: list[Comparison], alpha: float, floor: float = KAPPA_FLOOR
) -> HumanAgreementFinding:
    units = [c for c in comparisons if c.human and c.winner is not None]
    annotators = sorted({h.annotator for c in units for h in c.human})
    judged, majority = [], []
    for comparison in units:
        humans = [_slot(comparison, h.choice) for h in comparison.human]
        decided = _majority([h for h in humans if h is not None])
        if decided is not None:
            judged.append(_slot(comparison, comparison.winner))
            majority.append(decided)
    rows = [[_slot(c, c.winner) for c in units]]
    for annotator in annotators:
        rows.append(
            [
                next((_slot(c, h.choice) for h in c.human if h.annotator == annotator), None)
                for c in units
            ]
        )
    common: dict[str, Any] = {
        "judge": judge,
        "measure": "pairwise",
        "annotators": len(annotators),
        "krippendorff_alpha": krippendorff_alpha(rows) if units else None,
    }
    test = _kappa_test(judged, majority, alpha, floor, "no comparison with a human majority")
    if isinstance(test, str):
        return HumanAgreementFinding(
            status="insufficient_data", reason=test, n=len(judged), **common
        )
    return HumanAgreementFinding(**test, **common)


def _kappa_test(
    judged: list[Any], majority: list[Any], alpha: float, floor: float, none_reason: str
) -> dict[str, Any] | str:
    """n, kappa, CI, p (kappa below ``floor``) and the pre-correction flag; or why not."""
    try:
        kappa = cohen_kappa(judged, majority)
    except ValueError as error:
        return none_reason if not judged else str(error)
    z = (kappa.kappa - floor) / kappa.std_error if kappa.std_error > 0 else 0.0
    p_value = float(norm_cdf(z))
    return {
        "n": kappa.n,
        "estimate": kappa.kappa,
        "ci95": kappa.ci95,
        "p_value": p_value,
        "flagged": flag(p_value, alpha, kappa.kappa < floor),
    }


def pointwise_agreement_finding(
    judge: str,
    verdicts: list[Verdict],
    labels: list[Label],
    alpha: float,
    rng: np.random.Generator,
    floor: float = KAPPA_FLOOR,
    n_resamples: int = 2000,
) -> HumanAgreementFinding:
    """The judge's parsed verdicts (``verdicts``: its primary-template verdicts) against the
    human ``labels`` of the same answers; see the module docstring."""
    parsed = [v for v in verdicts if v.verdict is not None]
    human: dict[tuple[str, str], dict[str, int]] = {}
    for label in labels:
        human.setdefault((label.candidate, label.item), {})[label.annotator] = int(
            label.outcome == "correct"
        )
    annotators = sorted({a for votes in human.values() for a in votes})
    units = [v for v in parsed if (v.candidate, v.item) in human]
    judged: list[int] = []
    majority: list[int] = []
    for verdict in units:
        decided = _majority([str(x) for x in human[(verdict.candidate, verdict.item)].values()])
        if decided is not None:
            judged.append(int(verdict.verdict or 0))
            majority.append(int(decided))
    rows: list[list[Any]] = [[v.verdict for v in units]]
    rows += [[human[(v.candidate, v.item)].get(a) for v in units] for a in annotators]
    apparent = float(np.mean([v.verdict for v in parsed])) if parsed else None
    common: dict[str, Any] = {
        "judge": judge,
        "measure": "pointwise",
        "annotators": len(annotators),
        "krippendorff_alpha": krippendorff_alpha(rows, {0: 0, 1: 1}) if units else None,
        "judged_pass_rate": apparent,
        "n_verdicts": len(parsed),
    }
    if judged:
        rates = binary_rates(judged, majority)
        common |= {
            "tpr": rates.tpr,
            "tpr_ci95": rates.tpr_ci95,
            "tnr": rates.tnr,
            "tnr_ci95": rates.tnr_ci95,
        }
        if apparent is not None and rates.tpr is not None and rates.tnr is not None:
            common["corrected_pass_rate"] = rogan_gladen(apparent, rates.tpr, rates.tnr)
            if common["corrected_pass_rate"] is not None:
                common["corrected_pass_rate_ci95"] = rogan_gladen_bootstrap(
                    [int(v.verdict or 0) for v in parsed], judged, majority, rng, n_resamples
                )
    test = _kappa_test(judged, majority, alpha, floor, "no labelled verdict with a human majority")
    if isinstance(test, str):
        return HumanAgreementFinding(
            status="insufficient_data", reason=test, n=len(judged), **common
        )
    return HumanAgreementFinding(**test, **common)


class HumanAgreementProbe:
    name: ClassVar[str] = "human_agreement"
    title: ClassVar[str] = "Agreement with humans"
    result_model: ClassVar[type[ProbeResult]] = HumanAgreementResult

    def missing_inputs(self, bundle: Bundle | BundleColumns) -> str | None:
        if any(c.human for c in bundle.comparisons):
            return None
        if any(label.source == "human" for label in bundle.labels) and bundle.n_verdicts:
            return None
        return "no human labels"

    def plan(self, spec: Any, base: Bundle, answers: Any) -> Sequence[Any]:
        """No calls of its own (it reads the pointwise verdicts or human labels)."""
        return ()

    def compute(self, context: ProbeContext) -> HumanAgreementResult:
        bundle, alpha = context.bundle, context.settings.alpha
        pairwise = by_judge(c for c in bundle.comparisons if c.human)
        labels = [label for label in bundle.labels if label.source == "human"]
        labelled = {(label.candidate, label.item) for label in labels}
        verdicts: dict[str, list[Verdict]] = {}
        for verdict in bundle.verdicts:
            if verdict.variant is None:
                verdicts.setdefault(verdict.judge, []).append(verdict)
        pointwise = {
            judge: own
            for judge, own in verdicts.items()
            if any((v.candidate, v.item) in labelled for v in own)
        }
        by_measure: list[HumanAgreementFinding] = []
        findings: list[HumanAgreementFinding] = []
        for judge in judges_in_order(bundle, set(pairwise) | set(pointwise)):
            measured = []
            if judge in pointwise:
                measured.append(
                    pointwise_agreement_finding(judge, pointwise[judge], labels, alpha, context.rng)
                )
            if judge in pairwise:
                measured.append(human_agreement_finding(judge, pairwise[judge], alpha))
            findings.append(measured[0])
            by_measure += measured
        return HumanAgreementResult(
            estimate_meaning="Cohen's kappa of the judge against the human majority (pointwise "
            "verdicts where humans labelled answers, else pairwise choices); flagged "
            f"when significantly below {KAPPA_FLOOR:g}",
            findings=findings,
            by_measure=by_measure,
        )


PROBE = HumanAgreementProbe()
