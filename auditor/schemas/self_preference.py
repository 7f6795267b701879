"""Result of the self-preference probe: a judge's verdicts on its own and same-family answers."""

from __future__ import annotations

from typing import Final, Literal

from pydantic import Field

from auditor.schemas.probe import ProbeFinding, ProbeResult

__all__ = ["SELF_PREFERENCE_SCHEMA_VERSION", "SelfPreferenceFinding", "SelfPreferenceResult"]

SELF_PREFERENCE_SCHEMA_VERSION: Final = "1.0"


class SelfPreferenceFinding(ProbeFinding):
    """``estimate`` = Mantel–Haenszel difference of 'judged correct' rates, own and
    same-family candidates minus the others, stratified by ground-truth correctness
    (Greenland–Robins CI; ``p_value`` the CMH test). Positive = the judge favours its kin."""

    own_verdicts: int = Field(ge=0, description="Parsed verdicts on own/same-family answers.")
    other_verdicts: int = Field(ge=0, description="Parsed verdicts on other candidates' answers.")
    own_candidates: list[str] = Field(default_factory=list, description="The judge's kin.")
    pass_rate_own_correct: float | None = Field(default=None)
    pass_rate_other_correct: float | None = Field(default=None)
    pass_rate_own_incorrect: float | None = Field(default=None)
    pass_rate_other_incorrect: float | None = Field(default=None)


class SelfPreferenceResult(ProbeResult):
    probe: Literal["self_preference"] = "self_preference"
    schema_version: str = SELF_PREFERENCE_SCHEMA_VERSION
    findings: list[SelfPreferenceFinding] = Field(default_factory=list)  # type: ignore[assignment]
