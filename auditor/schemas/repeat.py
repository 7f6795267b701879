"""Result of the repeat probe: how often a judge changes its verdict on an identical call."""

from __future__ import annotations

from typing import Final, Literal

from pydantic import Field

from auditor.schemas.probe import ProbeFinding, ProbeResult

__all__ = ["REPEAT_SCHEMA_VERSION", "RepeatFinding", "RepeatResult"]

REPEAT_SCHEMA_VERSION: Final = "1.0"


class RepeatFinding(ProbeFinding):
    """``estimate`` = flip rate between a comparison and its placebo repeat (Wilson CI);
    ``p_value`` = exact one-sided binomial test that the flip rate exceeds ``tolerance``."""

    flips: int = Field(ge=0, description="Repeats whose winner differs from the original's.")
    tolerance: float = Field(description="Flip rate tolerated before a judge is flagged.")


class RepeatResult(ProbeResult):
    probe: Literal["repeat"] = "repeat"
    schema_version: str = REPEAT_SCHEMA_VERSION
    findings: list[RepeatFinding] = Field(default_factory=list)  # type: ignore[assignment]
