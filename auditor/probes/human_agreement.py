"""Agreement of a judge with human annotators on pairwise comparisons.

Units are a judge's parsed comparisons that carry human choices. Each choice is read by slot
("a", "b", "tie"), so a judge and its humans are compared on the same label set.
- Cohen's kappa of the judge against the human majority (units without a strict majority are
  left out), Fleiss–Cohen–Everitt standard error (`auditor.stats.agreement.cohen_kappa`);
- Krippendorff's alpha (nominal) over the judge and every annotator, missing choices allowed
  (the ``krippendorff`` package, Castro 2017).
A judge is flagged when its kappa is significantly below ``KAPPA_FLOOR`` (one-sided z-test with
the non-null standard error): it does not reach moderate agreement (Landis & Koch 1977).

TPR/TNR and the Rogan–Gladen corrected pass rate need binary pointwise human labels; they are
left empty here (``auditor.stats.agreement`` provides them).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, ClassVar, Final

import numpy as np
from scipy import stats as _scipy_stats

from auditor.probes._pairwise import by_judge, flag, judges_in_order
from auditor.probes.base import ProbeContext
from auditor.schemas.bundle import Bundle, Comparison
from auditor.schemas.human_agreement import HumanAgreementFinding, HumanAgreementResult
from auditor.schemas.probe import ProbeResult
from auditor.stats.agreement import cohen_kappa

__all__ = ["KAPPA_FLOOR", "HumanAgreementProbe", "human_agreement_finding"]

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


def krippendorff_alpha(rows: list[list[str | None]]) -> float | None:
    """Nominal alpha of raters (rows) over units (columns); None when undefined."""
    import krippendorff  # only this probe needs it

    data = np.array(
        [[np.nan if v is None else _SLOT_CODES[v] for v in row] for row in rows], dtype=float
    )
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
    try:
        kappa = cohen_kappa(judged, majority)
    except ValueError as error:
        reason = "no comparison with a human majority" if not judged else str(error)
        return HumanAgreementFinding(
            status="insufficient_data", reason=reason, n=len(judged), **common
        )
    z = (kappa.kappa - floor) / kappa.std_error if kappa.std_error > 0 else 0.0
    p_value = float(_scipy_stats.norm.cdf(z))
    return HumanAgreementFinding(
        n=kappa.n,
        estimate=kappa.kappa,
        ci95=kappa.ci95,
        p_value=p_value,
        flagged=flag(p_value, alpha, kappa.kappa < floor),
        **common,
    )


class HumanAgreementProbe:
    name: ClassVar[str] = "human_agreement"
    title: ClassVar[str] = "Agreement with humans"
    result_model: ClassVar[type[ProbeResult]] = HumanAgreementResult

    def missing_inputs(self, bundle: Bundle) -> str | None:
        if not any(c.human for c in bundle.comparisons):
            return "no human labels"
        return None

    def plan(self, spec: Any, base: Bundle, answers: Any) -> Sequence[Any]:
        """No calls of its own (it reads the pointwise verdicts or human labels)."""
        return ()

    def compute(self, context: ProbeContext) -> HumanAgreementResult:
        grouped = by_judge(c for c in context.bundle.comparisons if c.human)
        return HumanAgreementResult(
            estimate_meaning="Cohen's kappa of the judge against the human majority; flagged "
            f"when significantly below {KAPPA_FLOOR:g}",
            findings=[
                human_agreement_finding(judge, grouped[judge], context.settings.alpha)
                for judge in judges_in_order(context.bundle, grouped)
            ],
        )


PROBE = HumanAgreementProbe()
