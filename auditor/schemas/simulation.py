"""The simulated world's configuration (`auditor.ecosystem` realizes it): the typed
``simulation`` field of an audit spec, validated here like every other spec field."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from auditor.schemas.limits import (
    MAX_NAME_LENGTH,
    MAX_SEED,
    MAX_SIMULATED_CELLS,
    MAX_SIMULATED_ITEMS,
    MAX_SIMULATED_MODELS,
)

__all__ = ["EcosystemConfig", "FamilyConfig", "JudgeWeakness"]


_CONFIG = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class FamilyConfig(BaseModel):
    """A family of models that share error tendencies."""

    model_config = _CONFIG

    name: str = Field(
        min_length=1,
        max_length=MAX_NAME_LENGTH - 10,
        description="Family name; models are named `<family>-<k>` (so at most 190 characters).",
    )
    size: int = Field(ge=1, le=MAX_SIMULATED_MODELS, description="Number of models in the family.")
    provider: str = Field(
        default="simlab",
        max_length=MAX_NAME_LENGTH,
        description="Provider reported for the models.",
    )
    trap_strength: float = Field(
        default=1.2, ge=0, description="Pull of the family's shared wrong option (logit units)."
    )


class JudgeWeakness(BaseModel):
    """Planted weaknesses of one simulated judge (the battery's ground truth); 0 = none.

    Each is the probability that, in a call where it applies, the weakness decides the
    verdict instead of the content: ``position`` the first slot wins; ``verbosity`` the padded
    answer wins; ``self_preference`` the same-family answer wins (pairwise) or is accepted
    (pointwise); ``cue`` the cued answer wins; ``injection`` the injected answer wins;
    ``noise`` a repeated call (with a nonce) is decided afresh.
    """

    model_config = _CONFIG

    position: float = Field(default=0.0, ge=0, le=1)
    verbosity: float = Field(default=0.0, ge=0, le=1)
    self_preference: float = Field(default=0.0, ge=0, le=1)
    cue: float = Field(default=0.0, ge=0, le=1)
    injection: float = Field(default=0.0, ge=0, le=1)
    noise: float = Field(default=0.0, ge=0, le=1)


class EcosystemConfig(BaseModel):
    """Everything that determines a synthetic ecosystem; equal configs give equal worlds."""

    model_config = _CONFIG

    seed: int = Field(default=0, ge=0, le=MAX_SEED, description="Seed of every random draw.")
    n_items: int = Field(
        default=200,
        ge=1,
        le=MAX_SIMULATED_ITEMS,
        description="Number of multiple-choice items.",
    )
    n_options: int = Field(default=4, ge=2, le=10, description="Options per item (max).")
    ragged: bool = Field(
        default=False, description="Draw each item's option count from 2..n_options."
    )
    families: list[FamilyConfig] = Field(
        default_factory=lambda: [
            FamilyConfig(name=name, size=4) for name in ("atlas", "boreal", "cygnus", "draco")
        ],
        description="Model families.",
    )
    ability_range: tuple[float, float] = Field(
        default=(0.5, 4.5), description="Range of model abilities (logit units)."
    )
    own_trap_strength: float = Field(
        default=0.8, ge=0, description="Pull of each model's own idiosyncratic wrong option."
    )
    noise: float = Field(default=1.0, ge=0, description="Scale of per-option logit noise.")
    temperature: float = Field(default=1.0, gt=0, description="Softmax temperature.")
    judges: list[str] = Field(
        default_factory=list,
        description="Models that act as judges (default: the strongest model of each family).",
    )
    affinity_strength: float = Field(
        default=0.0, ge=0, le=1, description="Planted affinity bias s of every judge."
    )
    judge_affinity: dict[str, float] = Field(
        default_factory=dict, description="Per-judge override of affinity_strength."
    )
    p_hit: float = Field(default=0.9, ge=0, le=1, description="P(1) for a matching answer.")
    p_miss: float = Field(default=0.1, ge=0, le=1, description="P(1) for a non-matching answer.")
    provider_trap_strength: float = Field(
        default=0.0,
        ge=0,
        description="Pull of a wrong option shared by every model of one provider (logit units; "
        "the planted same-provider error effect of Kim et al. 2025). 0 leaves the world as it "
        "was: its draws come from a separate stream.",
    )
    same_provider_inflation: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Planted judge inflation d: a judge accepts an answer of a candidate from "
        "its own provider with P(1) + d (1 - P(1)) instead of P(1).",
    )
    # --- reliability across difficulty and prompts (Zhou et al., Nature 2024) --------------
    avoidance: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description="Planted avoidance: P(a model of average ability avoids an item of average "
        "difficulty that it would answer wrongly) ('I don't know'); 0 = none.",
    )
    avoidance_scale_slope: float = Field(
        default=1.5,
        description="Logit fall of avoidance per SD of model ability (larger models avoid less).",
    )
    avoidance_difficulty_slope: float = Field(
        default=1.0, description="Logit rise of avoidance per unit of item difficulty."
    )
    false_approval_slope: float = Field(
        default=0.0,
        description="Planted judge weakness: logit fall of P(1) on a non-gold answer per unit of "
        "difficulty, so false approval rises on easy items (0 = none).",
    )
    judge_false_approval_slope: dict[str, float] = Field(
        default_factory=dict, description="Per-judge override of false_approval_slope."
    )
    prompt_sensitivity: float = Field(
        default=0.0,
        ge=0,
        description="Planted prompt sensitivity: SD (logit units) of the shift a template "
        "variant other than the primary gives a model's gold option (MCQ) or a judge's P(1).",
    )
    model_prompt_sensitivity: dict[str, float] = Field(
        default_factory=dict, description="Per-model override of prompt_sensitivity."
    )
    judge_weaknesses: dict[str, JudgeWeakness] = Field(
        default_factory=dict,
        description="Planted battery weaknesses per judge (position, verbosity, self-preference, "
        "cue, injection, repeat noise); judges not named have none.",
    )

    @model_validator(mode="after")
    def _bounded_world(self) -> EcosystemConfig:
        # The world's probability array is built whole: refuse one no worker could hold.
        n_models = sum(family.size for family in self.families)
        if n_models > MAX_SIMULATED_MODELS:
            raise ValueError(f"families: {n_models} models in all; at most {MAX_SIMULATED_MODELS}")
        cells = n_models * self.n_items * self.n_options
        if cells > MAX_SIMULATED_CELLS:
            raise ValueError(
                f"models x n_items x n_options = {cells:,}; at most {MAX_SIMULATED_CELLS:,} "
                "(fewer items or models)"
            )
        return self
