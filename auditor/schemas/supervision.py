"""Result of the `supervision` probe: judges as supervisors of three-way outcomes (Zhou et
al., Nature 2024): how often a judge approves incorrect answers, rejects correct ones and
approves avoidant ones, by difficulty, and whether false approval changes with difficulty."""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from auditor.schemas.probe import ProbeFinding, ProbeResult
from auditor.schemas.reliability import DifficultyBin, DifficultySource, Rate, TruthSource

__all__ = [
    "SUPERVISION_SCHEMA_VERSION",
    "JudgeSupervision",
    "SupervisionBin",
    "SupervisionFinding",
    "SupervisionResult",
]

SUPERVISION_SCHEMA_VERSION: Final = "1.1"
_FROZEN = ConfigDict(frozen=True, extra="forbid")


class SupervisionBin(BaseModel):
    """A judge's error rates in one difficulty bin."""

    model_config = _FROZEN

    index: int = Field(ge=0, description="0 = the easiest bin.")
    false_approval: Rate = Field(description="Verdict 1 on incorrect answers.")
    false_rejection: Rate = Field(description="Verdict 0 on correct answers.")
    avoidant_approval: Rate = Field(description="Verdict 1 on avoidant answers.")


class JudgeSupervision(BaseModel):
    """One judge against the three-way truth (self-judgments excluded)."""

    model_config = _FROZEN

    judge: str
    n_verdicts: int = Field(ge=0, description="Valid verdicts on labelled answers.")
    invalid_verdicts: int = Field(ge=0, description="Unparseable verdicts (counted, excluded).")
    false_approval: Rate = Field(description="Verdict 1 on incorrect answers.")
    false_rejection: Rate = Field(description="Verdict 0 on correct answers.")
    avoidant_approval: Rate = Field(description="Verdict 1 on avoidant answers.")
    by_bin: list[SupervisionBin] = Field(description="Easiest first.")
    trend_z: float | None = Field(
        default=None,
        description="Cochran-Armitage z of false approval over the bins (< 0: it falls as "
        "items get harder, i.e. rises on easy items).",
    )
    trend_p: float | None = Field(default=None, description="Two-sided p of trend_z.")
    trend_reason: str | None = Field(default=None, description="Why the trend is undefined.")
    easy_minus_hard: float | None = Field(
        default=None, description="False approval in the easiest bin minus the hardest."
    )
    easy_minus_hard_ci95: tuple[float, float] | None = Field(
        default=None, description="Newcombe hybrid score 95% interval of easy_minus_hard."
    )


class SupervisionFinding(ProbeFinding):
    """A judge's headline: false approval easiest minus hardest bin, trend p, overall rate."""

    false_approval: float | None = Field(default=None, description="Overall false approval.")


class SupervisionResult(ProbeResult):
    """Every judge as a supervisor, against the three-way truth."""

    probe: Literal["supervision"] = "supervision"
    schema_version: str = SUPERVISION_SCHEMA_VERSION
    truth_source: TruthSource | None = None
    difficulty_source: DifficultySource | None = None
    difficulty_bins: int | None = Field(
        default=None,
        description="Quantile bins asked for (settings.difficulty_bins); `bins` holds fewer "
        "when tied difficulties merge edges.",
    )
    bins: list[DifficultyBin] = Field(default_factory=list, description="Easiest first.")
    judges: list[JudgeSupervision] = Field(default_factory=list)
    findings: list[SupervisionFinding] = Field(default_factory=list)  # type: ignore[assignment]
