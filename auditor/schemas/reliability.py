"""Result of the `reliability` probe: three-way outcomes of free-form answers by difficulty
(Zhou et al., "Larger and more instructable language models become less reliable", Nature
2024), and the shared shapes of the reliability probes (rates, difficulty bins, sources)."""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from auditor.schemas.probe import ProbeFinding, ProbeResult

__all__ = [
    "RELIABILITY_SCHEMA_VERSION",
    "DifficultyBin",
    "DifficultySource",
    "ModelReliability",
    "OutcomeRates",
    "Rate",
    "ReliabilityFinding",
    "ReliabilityResult",
    "ScaleTrend",
    "TruthSource",
]

RELIABILITY_SCHEMA_VERSION: Final = "1.1"
_FROZEN = ConfigDict(frozen=True, extra="forbid")

DifficultySource = Literal["item", "mcq_error_share"]
"""``item``: the items' own `difficulty` (e.g. human-rated); ``mcq_error_share``: the proxy, the
share of the bundle's models whose multiple-choice answer to the item is wrong."""
TruthSource = Literal["human", "grader", "planted"]
"""Where the three-way outcomes came from, in order of precedence."""


class Rate(BaseModel):
    """A proportion k / n with its Wilson 95% interval (None when n = 0)."""

    model_config = _FROZEN

    k: int = Field(ge=0, description="Count of the event.")
    n: int = Field(ge=0, description="Number of observations.")
    rate: float | None = Field(default=None, description="k / n; None when n = 0.")
    ci95: tuple[float, float] | None = Field(default=None, description="Wilson 95% interval.")


class DifficultyBin(BaseModel):
    """One quantile bin of difficulty (0 = easiest)."""

    model_config = _FROZEN

    index: int = Field(ge=0, description="0 = the easiest bin.")
    low: float = Field(description="Lowest difficulty in the bin.")
    high: float = Field(description="Highest difficulty in the bin.")
    n_items: int = Field(ge=0, description="Items in the bin.")


class OutcomeRates(BaseModel):
    """Shares of correct, avoidant and incorrect answers among n labelled answers."""

    model_config = _FROZEN

    n: int = Field(ge=0, description="Labelled answers.")
    correct: Rate
    avoidant: Rate
    incorrect: Rate


class ModelReliability(BaseModel):
    """One model's answers: outcome rates overall and by difficulty bin, and concordance."""

    model_config = _FROZEN

    model: str
    params: float | None = Field(default=None, description="Size in billions, if known.")
    overall: OutcomeRates
    by_bin: list[OutcomeRates] = Field(description="Outcome rates per bin, easiest first.")
    kendall_tau: float | None = Field(
        default=None,
        description="Kendall's tau-b between item difficulty and the answer being incorrect "
        "(> 0: errors concentrate on hard items, as a reliable model's should).",
    )
    kendall_p: float | None = Field(default=None, description="Two-sided p of kendall_tau.")
    kendall_reason: str | None = Field(default=None, description="Why tau is undefined.")
    easiest_bin_error: Rate = Field(
        description="Incorrect share in the easiest bin: above 0 means no 'safe zone'."
    )


class ScaleTrend(BaseModel):
    """Across models, how the outcome shares change with size (Kendall's tau-b with size)."""

    model_config = _FROZEN

    n_models: int = Field(ge=0, description="Models with a known size and labelled answers.")
    avoidance_tau: float | None = Field(default=None, description="tau(size, avoidant share).")
    avoidance_p: float | None = None
    incorrect_tau: float | None = Field(default=None, description="tau(size, incorrect share).")
    incorrect_p: float | None = None
    ultracrepidarian_tau: float | None = Field(
        default=None,
        description="tau(size, incorrect / (incorrect + avoidant)): > 0 means larger models "
        "fail by erring rather than by avoiding.",
    )
    ultracrepidarian_p: float | None = None
    flagged: bool = Field(
        default=False,
        description="Avoidance falls with size and the failures that remain are more often "
        "errors (both taus significant at alpha, in those directions).",
    )
    conclusion: str = Field(description="The finding in words.")


class ReliabilityFinding(ProbeFinding):
    """A model's headline: the incorrect share in the easiest bin (no safe zone)."""

    kendall_tau: float | None = Field(default=None, description="tau(difficulty, incorrect).")
    kendall_p: float | None = Field(default=None, description="Two-sided p of kendall_tau.")


class ReliabilityResult(ProbeResult):
    """Three-way outcomes by difficulty, per model, and their trend with model size."""

    probe: Literal["reliability"] = "reliability"
    schema_version: str = RELIABILITY_SCHEMA_VERSION
    truth_source: TruthSource | None = Field(
        default=None, description="Source of the outcomes used (human > grader > planted)."
    )
    difficulty_source: DifficultySource | None = Field(
        default=None, description="Item difficulty field, or the proxy MCQ error share."
    )
    difficulty_bins: int | None = Field(
        default=None,
        description="Quantile bins asked for (settings.difficulty_bins); `bins` holds fewer "
        "when tied difficulties merge edges.",
    )
    bins: list[DifficultyBin] = Field(default_factory=list, description="Easiest first.")
    models: list[ModelReliability] = Field(default_factory=list)
    scale: ScaleTrend | None = Field(default=None, description="None without model sizes.")
    unlabelled_conflicts: int = Field(
        default=0, description="Answers left out: annotators of the chosen source disagreed."
    )
    findings: list[ReliabilityFinding] = Field(default_factory=list)  # type: ignore[assignment]
