"""Result of the human-agreement probe: how well a judge's verdicts match human annotators."""

from __future__ import annotations

from typing import Final, Literal

from pydantic import Field

from auditor.schemas.probe import ProbeFinding, ProbeResult

__all__ = ["HUMAN_AGREEMENT_SCHEMA_VERSION", "HumanAgreementFinding", "HumanAgreementResult"]

HUMAN_AGREEMENT_SCHEMA_VERSION: Final = "1.0"


class HumanAgreementFinding(ProbeFinding):
    """``estimate`` = Cohen's kappa of the judge against the human majority (units without a
    majority are left out), Fleiss–Cohen–Everitt CI; ``p_value`` tests kappa = 0. A judge is
    flagged when it does NOT agree beyond chance (its kappa is not significantly above 0)."""

    measure: Literal["pairwise", "pointwise"] = Field(description="Which verdicts were compared.")
    krippendorff_alpha: float | None = Field(
        default=None, description="Nominal alpha over the judge and every annotator."
    )
    annotators: int = Field(default=0, ge=0)
    tpr: float | None = Field(default=None, description="Share of human positives judged so.")
    tpr_ci95: tuple[float, float] | None = Field(default=None)
    tnr: float | None = Field(default=None, description="Share of human negatives judged so.")
    tnr_ci95: tuple[float, float] | None = Field(default=None)
    judged_pass_rate: float | None = Field(default=None, description="Judge's apparent rate.")
    corrected_pass_rate: float | None = Field(
        default=None, description="Rogan–Gladen pass rate corrected for TPR/TNR."
    )
    corrected_pass_rate_ci95: tuple[float, float] | None = Field(
        default=None, description="Percentile bootstrap CI of the corrected rate."
    )
    n_verdicts: int | None = Field(
        default=None,
        ge=0,
        description="Pointwise: the judge's parsed verdicts behind judged_pass_rate (all of "
        "them, labelled by humans or not).",
    )


class HumanAgreementResult(ProbeResult):
    probe: Literal["human_agreement"] = "human_agreement"
    schema_version: str = HUMAN_AGREEMENT_SCHEMA_VERSION
    findings: list[HumanAgreementFinding] = Field(default_factory=list)  # type: ignore[assignment]
    by_measure: list[HumanAgreementFinding] = Field(
        default_factory=list,
        description="Every (judge, measure) finding: a judge with both human-labelled verdicts "
        "and human-labelled comparisons has two; `findings` holds its pointwise one (these "
        "carry no adjusted p: only `findings` are in the multiple-testing family).",
    )
