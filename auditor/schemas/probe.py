"""The common shape of a probe's result: what every audit measure reports per judge.

Each probe has its own versioned result model (a subclass of `ProbeResult`) holding its details;
its `findings` give one headline entry per judge (or per model, for model-level measures) in the
shape the scorecard, the multiple-testing correction across judges x probes, and
``report.json["probes"]`` read. A probe-specific finding subclasses `ProbeFinding` to add its own
named fields (never an untyped dict).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ProbeFinding", "ProbeResult", "ProbeSkipped", "ProbeStatus"]

ProbeStatus = Literal["ok", "insufficient_data"]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class ProbeFinding(BaseModel):
    """One judge's (or model's) headline number for one probe."""

    model_config = _FROZEN

    judge: str = Field(description="The judge (or, for model-level probes, the model) measured.")
    status: ProbeStatus = Field(default="ok", description="`insufficient_data` says why in reason.")
    reason: str | None = Field(default=None, description="Why the status is not `ok`.")
    n: int = Field(ge=0, description="Number of observations behind the estimate.")
    estimate: float | None = Field(
        default=None, description="The probe's headline statistic (its meaning: `ProbeResult`)."
    )
    ci95: tuple[float, float] | None = Field(default=None, description="95% CI of the estimate.")
    p_value: float | None = Field(default=None, description="Unadjusted two-sided p-value.")
    p_adjusted: float | None = Field(
        default=None,
        description="p adjusted across all judges x probes of the audit (settings.correction); "
        "filled by the analysis after every probe ran.",
    )
    flagged: bool = Field(
        default=False, description="p_adjusted < alpha and the effect points the biased way."
    )


class ProbeResult(BaseModel):
    """Base of every probe's versioned result."""

    model_config = _FROZEN

    probe: str = Field(description="Registry name of the probe, e.g. `position`.")
    schema_version: str = Field(description="Version of this probe's result model.")
    status: ProbeStatus = Field(default="ok")
    reason: str | None = Field(default=None, description="Why the status is not `ok`.")
    estimate_meaning: str = Field(
        description="What `findings[].estimate` measures and which direction is biased."
    )
    findings: list[ProbeFinding] = Field(default_factory=list)


class ProbeSkipped(BaseModel):
    """A registered probe that did not run on this bundle, and why (e.g. "no comparisons")."""

    model_config = _FROZEN

    probe: str
    reason: str
