"""Result of the cues probe (CALM robustness): verdict changes under irrelevant cues vs placebo."""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from auditor.schemas.probe import ProbeFinding, ProbeResult

__all__ = ["CUES_SCHEMA_VERSION", "CueEffect", "CuesFinding", "CuesResult"]

CUES_SCHEMA_VERSION: Final = "1.0"


class CueEffect(BaseModel):
    """One cue's change rate against the placebo's, for one judge."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cue: str = Field(description="Cue name, e.g. `authority`.")
    n: int = Field(ge=0, description="Cued comparisons with an original to compare with.")
    changed: int = Field(ge=0, description="Of those, verdicts that changed.")
    robustness: float | None = Field(default=None, description="Share of verdicts unchanged.")
    difference: float | None = Field(
        default=None, description="Change rate under the cue minus under the placebo."
    )
    ci95: tuple[float, float] | None = Field(default=None, description="Newcombe CI.")
    p_value: float | None = Field(default=None, description="Fisher exact test, two-sided.")


class CuesFinding(ProbeFinding):
    """``estimate`` = change rate under any cue minus the placebo's change rate (the judge's
    own noise floor); ``ci95`` Newcombe's hybrid score interval; ``p_value`` Fisher's exact
    test. Positive = the cues move the judge more than its own noise does."""

    robustness: float | None = Field(default=None, description="Share unchanged under cues.")
    placebo_robustness: float | None = Field(
        default=None, description="Share unchanged under the placebo repeat."
    )
    placebo_n: int = Field(default=0, ge=0, description="Placebo repeats behind the baseline.")
    by_cue: list[CueEffect] = Field(default_factory=list, description="Each cue on its own.")


class CuesResult(ProbeResult):
    probe: Literal["cues"] = "cues"
    schema_version: str = CUES_SCHEMA_VERSION
    findings: list[CuesFinding] = Field(default_factory=list)  # type: ignore[assignment]
