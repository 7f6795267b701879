"""The versioned result of the correlated-errors probe (Kim et al. 2025, ICML, "Correlated
Errors in Large Language Models"): what `auditor correlated-errors` writes to
``correlated_errors.json`` and what the report section renders.

Undefined values are ``None`` with a reason beside them, never NaN.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from auditor.schemas.probe import ProbeFinding, ProbeResult, ProbeStatus

__all__ = [
    "CORRELATED_ERRORS_SCHEMA_VERSION",
    "AgreementMatrix",
    "CapabilityBin",
    "CorrelatedErrorsResult",
    "CorrelatedErrorsSettings",
    "EffectiveJudgesResult",
    "InflationCandidate",
    "InflationFinding",
    "JudgeInflationResult",
    "MonocultureResult",
    "PairRegressionResult",
    "RegressionTerm",
    "SubsetPoint",
]

CORRELATED_ERRORS_SCHEMA_VERSION: Final = "1.0"

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class CorrelatedErrorsSettings(BaseModel):
    """Settings of the correlated-errors analysis (every default stated in the result)."""

    model_config = _FROZEN

    alpha: float = Field(default=0.05, gt=0, lt=1, description="Significance level.")
    seed: int = Field(default=0, description="Seed of the bootstrap and permutation draws.")
    n_bootstrap: int = Field(
        default=1000, ge=0, le=100_000, description="Bootstrap resamples for the CIs (0 = none)."
    )
    n_permutations: int = Field(
        default=2000, ge=0, le=100_000, description="Permutations of the inflation test."
    )
    clustering: Literal["dyadic-conservative", "dyadic", "two-way"] = Field(
        default="dyadic-conservative",
        description="Cluster-robust covariance of the pair regression (auditor.stats.cluster_ols); "
        "two-way equals statsmodels cov_type='cluster' with both model indices.",
    )
    use_t: bool = Field(
        default=True, description="t reference with min(clusters) - 1 df (else normal)."
    )
    max_panel_size: int = Field(
        default=10, ge=2, description="Largest k of the greedy most/least correlated subsets."
    )
    n_accuracy_bins: int = Field(
        default=5, ge=1, le=50, description="Equal-width accuracy bins of similarity vs capability."
    )


class AgreementMatrix(BaseModel):
    """Both-wrong error agreement of every pair of models."""

    model_config = _FROZEN

    models: list[str]
    providers: list[str | None] = Field(description="Provider of each model (None = unknown).")
    families: list[str | None] = Field(description="Family of each model (None = unknown).")
    accuracy: list[float | None] = Field(description="Ground-truth MCQ accuracy of each model.")
    matrix: list[list[float | None]] = Field(
        description="Among items both got wrong, the share with the same wrong option; null "
        "where the pair has no both-wrong item (and on the diagonal)."
    )
    n_both_wrong: list[list[int]] = Field(description="Items both models got wrong.")
    mean_agreement: float | None = Field(description="Mean over pairs with a value.")
    chance_level: float = Field(
        description="Random-choice agreement among wrong options: mean over items of 1/(k-1)."
    )


class RegressionTerm(BaseModel):
    model_config = _FROZEN

    coef: float
    se: float
    ci95: tuple[float, float]
    p: float


class PairRegressionResult(BaseModel):
    """agreement ~ same_provider + same_family + acc_mean + acc_product over model pairs."""

    model_config = _FROZEN

    status: ProbeStatus = "ok"
    reason: str | None = None
    n_pairs: int = Field(description="Pairs in the regression.")
    n_excluded: int = Field(description="Pairs left out because no item was wrong for both.")
    excluded_models: dict[str, str] = Field(
        default_factory=dict, description="Models left out with their pairs, and why."
    )
    dropped_terms: dict[str, str] = Field(
        default_factory=dict, description="Terms not estimated, and why."
    )
    formula: str | None = None
    clustering: str = Field(description="Covariance estimator and its clusters.")
    inference: str | None = Field(default=None, description="Reference distribution of p and CI.")
    n_clusters: int | None = None
    psd_adjusted: bool = Field(
        default=False, description="Negative eigenvalues of the covariance were set to 0."
    )
    r_squared: float | None = None
    terms: dict[str, RegressionTerm] = Field(default_factory=dict)


class SubsetPoint(BaseModel):
    model_config = _FROZEN

    k: int
    members: list[str]
    observed: float = Field(description="Share of units every member fails.")
    baseline: float = Field(description="Product of the members' failure rates.")
    ratio: float | None = Field(description="observed / baseline; null when baseline is 0.")


class MonocultureResult(BaseModel):
    """Systemic exclusion of a set of members (models over items, or judges over answers)."""

    model_config = _FROZEN

    status: ProbeStatus = "ok"
    reason: str | None = None
    scope: str = Field(description="Who fails what, e.g. 'models answering items wrong'.")
    members: list[str] = Field(default_factory=list)
    n_units: int = 0
    n_all_fail: int = 0
    observed: float | None = None
    baseline: float | None = None
    ratio: float | None = None
    ratio_ci95: tuple[float, float] | None = Field(
        default=None, description="Percentile bootstrap CI over units."
    )
    most_correlated: list[SubsetPoint] = Field(default_factory=list)
    least_correlated: list[SubsetPoint] = Field(default_factory=list)


class EffectiveJudgesResult(BaseModel):
    """Participation ratio (sum l)^2 / sum l^2 of the judges' error correlation eigenvalues."""

    model_config = _FROZEN

    status: ProbeStatus = "ok"
    reason: str | None = None
    judges: list[str] = Field(default_factory=list)
    n_units: int = Field(default=0, description="Candidate answers every judge graded.")
    n_eff: float | None = None
    ci95: tuple[float, float] | None = Field(
        default=None, description="Percentile bootstrap CI over items."
    )
    eigenvalues: list[float] = Field(default_factory=list)
    excluded: list[str] = Field(
        default_factory=list, description="Judges whose errors do not vary (left out)."
    )


class InflationCandidate(BaseModel):
    model_config = _FROZEN

    candidate: str
    provider: str | None
    same_provider: bool
    score: float = Field(description="Share of the candidate's answers the judge accepted.")
    accuracy: float = Field(description="The candidate's ground-truth accuracy.")
    inflation: float = Field(description="score - accuracy.")


class JudgeInflationResult(BaseModel):
    """One judge's inflation of same-provider candidates against the others."""

    model_config = _FROZEN

    judge: str
    provider: str | None
    status: ProbeStatus = "ok"
    reason: str | None = None
    n_same: int = 0
    n_other: int = 0
    mean_same: float | None = None
    mean_other: float | None = None
    difference: float | None = Field(default=None, description="mean_same - mean_other.")
    ci95: tuple[float, float] | None = Field(
        default=None, description="Stratified bootstrap CI over candidates."
    )
    p_value: float | None = Field(default=None, description="Permutation p of the difference.")
    interaction: float | None = Field(
        default=None, description="same:accuracy slope of inflation ~ same * accuracy."
    )
    interaction_se: float | None = None
    interaction_p: float | None = None
    candidates: list[InflationCandidate] = Field(default_factory=list)


class CapabilityBin(BaseModel):
    model_config = _FROZEN

    low: float
    high: float
    n_models: int
    n_pairs: int
    mean_capa: float | None


class InflationFinding(ProbeFinding):
    """A judge's same-provider inflation difference (the headline of the probe)."""

    provider: str | None = None
    mean_same: float | None = None
    mean_other: float | None = None


class CorrelatedErrorsResult(ProbeResult):
    """The correlated-errors analysis of one bundle."""

    probe: str = "correlated_errors"
    schema_version: str = CORRELATED_ERRORS_SCHEMA_VERSION
    estimate_meaning: str = (
        "Judge inflation for same-provider candidates minus inflation for the others "
        "(inflation = judgment score - true accuracy); positive favours the judge's provider."
    )
    findings: list[InflationFinding] = Field(default_factory=list)  # type: ignore[assignment]
    settings: CorrelatedErrorsSettings
    missing: list[str] = Field(
        default_factory=list, description="What the bundle lacks for parts of the analysis."
    )
    agreement: AgreementMatrix | None = None
    regression: PairRegressionResult | None = None
    monoculture: MonocultureResult | None = None
    judge_monoculture: MonocultureResult | None = None
    effective_judges: EffectiveJudgesResult | None = None
    inflation: list[JudgeInflationResult] | None = None
    similarity_by_capability: list[CapabilityBin] | None = None
