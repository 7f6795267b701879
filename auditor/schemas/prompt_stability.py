"""Result of the `prompt_stability` probe: do answers and verdicts change with the prompt's
wording (Zhou et al., Nature 2024)? Per model, across its multiple-choice templates; per judge,
across its judge templates. The primary template is named ``primary``."""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from auditor.schemas.probe import ProbeFinding, ProbeResult
from auditor.schemas.reliability import Rate

__all__ = [
    "PRIMARY_TEMPLATE",
    "PROMPT_STABILITY_SCHEMA_VERSION",
    "PromptStabilityResult",
    "StabilityFinding",
    "TemplateStabilityRow",
]

PROMPT_STABILITY_SCHEMA_VERSION: Final = "1.1"
PRIMARY_TEMPLATE: Final = "primary"
"""Name given to the primary template (records without a `variant`)."""
_FROZEN = ConfigDict(frozen=True, extra="forbid")


class TemplateStabilityRow(BaseModel):
    """One model's (MCQ correctness) or judge's (verdicts) stability across its templates."""

    model_config = _FROZEN

    name: str = Field(description="The model or judge.")
    role: Literal["model", "judge"] = Field(description="`model`: MCQ; `judge`: verdicts.")
    templates: list[str] = Field(description="Templates compared (`primary` first).")
    n_units: int = Field(ge=0, description="Items (or judged answers) seen under every template.")
    flips: Rate = Field(description="Units whose outcome is not the same under every template.")
    rates: dict[str, float] = Field(
        description="Accuracy (model) or approval rate (judge) under each template."
    )
    rate_sd: float | None = Field(default=None, description="SD (ddof 1) of `rates`.")
    cochran_q: float | None = Field(default=None, description="Cochran's Q across templates.")
    p_value: float | None = Field(default=None, description="p of Cochran's Q (chi2, K-1 df).")
    reason: str | None = Field(default=None, description="Why Q is undefined.")
    affinity_partial_r: dict[str, float | None] = Field(
        default_factory=dict,
        description="Judges: the affinity partial r computed from each template's verdicts "
        "alone (is the affinity finding a property of the judge or of one wording?).",
    )
    affinity_ci95: dict[str, tuple[float, float] | None] = Field(
        default_factory=dict,
        description="Judges: Fisher-z 95% interval of each template's affinity partial r.",
    )
    affinity_items: int = Field(
        default=0,
        ge=0,
        description="Judges: items graded under every template, on which each template's "
        "affinity partial r is computed.",
    )
    affinity_spread: float | None = Field(
        default=None,
        description="Judges: largest minus smallest of the defined per-template affinity "
        "partial r (None with fewer than two defined).",
    )
    affinity_reason: dict[str, str] = Field(
        default_factory=dict,
        description="Judges: why a template's affinity partial r is undefined (e.g. too few "
        "candidates).",
    )


class StabilityFinding(ProbeFinding):
    """Headline: the flip share; p: exact one-sided binomial test of it above the tolerance."""

    role: Literal["model", "judge"] = Field(description="`model`: MCQ; `judge`: verdicts.")


class PromptStabilityResult(ProbeResult):
    """Stability of models' MCQ correctness and judges' verdicts across templates."""

    probe: Literal["prompt_stability"] = "prompt_stability"
    schema_version: str = PROMPT_STABILITY_SCHEMA_VERSION
    rows: list[TemplateStabilityRow] = Field(default_factory=list)
    findings: list[StabilityFinding] = Field(default_factory=list)  # type: ignore[assignment]
