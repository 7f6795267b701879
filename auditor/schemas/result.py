"""The versioned result of an affinity-bias analysis: what reports render and the API serves.

Everything a report shows is held here, so a stored result can be rendered again later without
re-running anything. Values that are undefined are ``None`` with a reason beside them.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "RESULT_SCHEMA_VERSION",
    "AffinityReport",
    "AnalysisSettings",
    "Coverage",
    "JudgeResult",
    "ModelSummary",
    "OLSFit",
    "PairResult",
    "PooledResult",
    "Provenance",
]

RESULT_SCHEMA_VERSION: Final = "1.0"

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class AnalysisSettings(BaseModel):
    """Settings of the affinity analysis; every default follows Goel et al. (2025)."""

    model_config = _FROZEN

    method: Literal["pearson", "spearman"] = Field(
        default="pearson", description="Correlation method of the partial correlation."
    )
    alpha: float = Field(
        default=0.05, gt=0, lt=1, description="Significance level for flagging a judge."
    )
    correction: Literal["holm", "fdr_bh"] = Field(
        default="holm",
        description="Multiple-testing correction across judges used for flagging "
        "(both Holm and Benjamini-Hochberg adjusted p-values are always reported).",
    )
    min_effect: float = Field(
        default=0.0, ge=-1, le=1, description="A judge is flagged only if partial r > this value."
    )
    n_bootstrap: int = Field(
        default=10_000, ge=0, description="Bootstrap resamples of candidates (0 = none)."
    )
    n_permutations: int = Field(
        default=10_000, ge=0, description="Permutations for the permutation p-value (0 = none)."
    )
    seed: int = Field(default=0, description="Seed of the bootstrap and permutation generator.")
    min_candidates: int = Field(
        default=5, ge=4, description="Fewer candidates than this is 'insufficient data'."
    )
    exclude_same_family: bool = Field(
        default=False, description="Exclude candidates of the judge's own family."
    )
    exclude_pairs: list[tuple[str, str]] = Field(
        default_factory=list, description="(judge, candidate) pairs excluded by configuration."
    )
    similarity: Literal["capa"] = Field(
        default="capa",
        description="Similarity metric: CAPA (probabilistic where both models have "
        "probabilities, discrete otherwise).",
    )


class OLSFit(BaseModel):
    """Ordinary least squares fit of score ~ capa + accuracy (statsmodels)."""

    model_config = _FROZEN

    coefficients: dict[str, float] = Field(description="Intercept, capa and accuracy slopes.")
    std_errors: dict[str, float] = Field(description="Standard errors of the coefficients.")
    p_values: dict[str, float] = Field(description="Two-sided p-values of the coefficients.")
    r_squared: float = Field(description="Coefficient of determination.")
    n: int = Field(description="Number of observations (candidates).")


class JudgeResult(BaseModel):
    """Affinity bias of one judge across its candidates."""

    model_config = _FROZEN

    judge: str
    status: Literal["ok", "insufficient_data"] = Field(
        description="`insufficient_data` when fewer candidates than `min_candidates` remain."
    )
    reason: str | None = Field(default=None, description="Why the status is not `ok`.")
    n_candidates: int = Field(description="Candidates with a score, a CAPA and an accuracy.")
    excluded_candidates: list[str] = Field(
        default_factory=list, description="Candidates left out (self, family, configured)."
    )
    partial_r: float | None = Field(
        default=None, description="Partial correlation of score and CAPA, given accuracy."
    )
    ci95: tuple[float, float] | None = Field(
        default=None, description="Fisher-z 95% CI of partial_r (unrounded; pingouin's method)."
    )
    p_value: float | None = Field(default=None, description="Two-sided p-value of partial_r.")
    p_holm: float | None = Field(default=None, description="Holm-adjusted p across judges.")
    p_fdr_bh: float | None = Field(
        default=None, description="Benjamini-Hochberg adjusted p across judges."
    )
    p_adjusted: float | None = Field(
        default=None, description="The adjusted p used for flagging (see settings.correction)."
    )
    bootstrap_ci95: tuple[float, float] | None = Field(
        default=None, description="Percentile bootstrap 95% CI of partial_r (candidates)."
    )
    permutation_p: float | None = Field(
        default=None, description="Freedman-Lane permutation p-value of partial_r."
    )
    pearson_r: float | None = Field(
        default=None, description="Raw correlation of score and CAPA (no control)."
    )
    ols: OLSFit | None = Field(default=None, description="OLS fit score ~ capa + accuracy.")
    flagged: bool = Field(
        default=False, description="p_adjusted < alpha and partial_r > min_effect."
    )


class PairResult(BaseModel):
    """One (judge, candidate) pair."""

    model_config = _FROZEN

    judge: str
    candidate: str
    capa: float | None = Field(description="Judge-candidate CAPA; null when undefined.")
    capa_kind: Literal["probabilistic", "discrete"] = Field(
        description="Probabilistic CAPA when both models gave probabilities, else discrete."
    )
    capa_undefined_reason: str | None = Field(default=None, description="Why CAPA is null.")
    judgment_score: float | None = Field(
        description="#1 / (#1 + #0) over the judge's valid verdicts; null with no valid verdict."
    )
    accuracy: float | None = Field(description="The candidate's ground-truth MCQ accuracy.")
    n_valid: int = Field(description="Verdicts that were 0 or 1.")
    n_invalid: int = Field(description="Unparseable verdicts (excluded from the score).")
    excluded: bool = Field(default=False, description="Left out of the judge's test.")
    exclusion_reason: str | None = Field(default=None, description="Why it was left out.")


class PooledResult(BaseModel):
    """Fixed-effect Fisher-z combination of the judges' partial correlations."""

    model_config = _FROZEN

    method: Literal["fisher_z_fixed_effect"] = "fisher_z_fixed_effect"
    n_judges: int
    r: float | None = None
    ci95: tuple[float, float] | None = None
    p_value: float | None = None
    note: str = Field(
        default="Judges share candidates, so their estimates are not independent; the pooled "
        "CI is optimistic.",
        description="Caveat a reader needs.",
    )


class ModelSummary(BaseModel):
    """One model's role and ground-truth performance."""

    model_config = _FROZEN

    name: str
    provider: str | None = None
    family: str | None = None
    accuracy: float | None = Field(description="Ground-truth MCQ accuracy.")
    n_items: int = Field(description="Items the model answered.")
    probabilistic: bool = Field(description="False when only chosen options were available.")
    is_judge: bool = False
    is_candidate: bool = False


class Coverage(BaseModel):
    """What data the analysis had and what was missing: stated, never hidden."""

    model_config = _FROZEN

    n_items: int
    n_outputs: int
    n_verdicts: int
    n_invalid_verdicts: int = Field(description="Unparseable verdicts, excluded from scores.")
    discrete_only_models: list[str] = Field(default_factory=list)
    pairs_without_verdicts: int = Field(
        default=0, description="(judge, candidate) pairs with no valid verdict."
    )
    failed_calls: dict[str, int] = Field(
        default_factory=dict, description="Model calls that failed for good, per stage."
    )
    notes: list[str] = Field(default_factory=list)


class Provenance(BaseModel):
    """What a reviewer needs to reproduce and verify the result."""

    model_config = ConfigDict(frozen=True, extra="allow")

    input_sha256: str = Field(description="SHA-256 of the canonical JSON of the input bundle.")
    created_at: str = Field(description="ISO-8601 UTC time the analysis ran.")
    software: dict[str, str] = Field(description="Versions of the packages that computed it.")
    audit_id: str | None = None
    spec: dict | None = Field(default=None, description="The audit spec (no credentials).")
    models: list[dict] = Field(
        default_factory=list, description="Model identifiers and parameters as called."
    )
    prompt_templates: dict[str, str] = Field(
        default_factory=dict, description="Judge prompt template name -> SHA-256."
    )


class AffinityReport(BaseModel):
    """The versioned result object of an affinity-bias analysis."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal["1.0"] = RESULT_SCHEMA_VERSION
    settings: AnalysisSettings
    judges: list[JudgeResult]
    pairs: list[PairResult]
    pooled: PooledResult
    models: list[ModelSummary]
    coverage: Coverage
    provenance: Provenance
