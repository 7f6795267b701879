"""Result of the affinity probe in the probe registry: one headline finding per judge.

The affinity analysis' details (judges with their partial correlations, pairs, pooled estimate,
models, coverage) are the top-level fields of `auditor.schemas.result.AuditResult`, so they are
not repeated here; the findings carry each judge's partial r of score on CAPA given accuracy in
the common `ProbeFinding` shape that the cross-probe correction and the scorecard read.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import Field

from auditor.schemas.probe import ProbeFinding, ProbeResult

__all__ = ["AFFINITY_SCHEMA_VERSION", "AffinityProbeResult"]

AFFINITY_SCHEMA_VERSION: Final = "1.0"


class AffinityProbeResult(ProbeResult):
    """The affinity probe's result: its findings (details: the audit result's top level)."""

    probe: Literal["affinity"] = "affinity"
    schema_version: str = AFFINITY_SCHEMA_VERSION
    estimate_meaning: str = Field(
        default="partial correlation of the judgment score with CAPA given the candidate's "
        "accuracy (Goel et al. 2025); positive = the judge favours candidates like itself",
        description="What `findings[].estimate` measures and which direction is biased.",
    )
    findings: list[ProbeFinding] = Field(default_factory=list)
