"""Result of the verbosity probe: padded copies that beat their originals; length slope."""

from __future__ import annotations

from typing import Final, Literal

from pydantic import Field

from auditor.schemas.probe import ProbeFinding, ProbeResult

__all__ = ["VERBOSITY_SCHEMA_VERSION", "VerbosityFinding", "VerbosityResult"]

VERBOSITY_SCHEMA_VERSION: Final = "1.0"


class VerbosityFinding(ProbeFinding):
    """The headline is the padding measure when the bundle holds padded copies, else the
    pointwise length slope (``measure`` says which).

    padding: ``estimate`` = share of decisive padded-vs-original verdicts won by the padded
    copy (Wilson CI, exact binomial test against 0.5). length_slope: ``estimate`` = logistic
    regression coefficient of the verdict on z-scored log answer length, controlling for
    correctness (statsmodels Logit; Wald CI and p)."""

    measure: Literal["padding", "length_slope"] = Field(description="What `estimate` is.")
    failure_rate: float | None = Field(
        default=None,
        description="Share of parsed padded-vs-original verdicts won by the padded copy "
        "(ties count as not won).",
    )
    padded_pairs: int = Field(default=0, ge=0, description="Parsed padded-vs-original verdicts.")
    length_slope: float | None = Field(
        default=None, description="Log-odds of 'correct' per SD of log length, given correctness."
    )
    length_slope_ci95: tuple[float, float] | None = Field(default=None)
    length_slope_p: float | None = Field(default=None)
    length_n: int = Field(default=0, ge=0, description="Pointwise verdicts behind the slope.")


class VerbosityResult(ProbeResult):
    probe: Literal["verbosity"] = "verbosity"
    schema_version: str = VERBOSITY_SCHEMA_VERSION
    findings: list[VerbosityFinding] = Field(default_factory=list)  # type: ignore[assignment]
