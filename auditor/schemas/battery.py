"""The battery's result: each battery probe's result, corrected across judges x probes."""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, field_validator

from auditor.schemas.probe import MultipleTesting, ProbeResult, ProbeSkipped
from auditor.schemas.result import probe_result_model

__all__ = ["BATTERY_SCHEMA_VERSION", "BatteryResult"]

BATTERY_SCHEMA_VERSION: Final = "1.0"


class BatteryResult(BaseModel):
    """What `auditor battery` writes and its report renders (nothing is computed later)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal["1.0"] = BATTERY_SCHEMA_VERSION
    alpha: float = Field(description="Significance level of the flags.")
    correction: Literal["holm", "fdr_bh"] = Field(
        description="Correction of the p-values across every judge x probe finding with a p."
    )
    judges: list[str] = Field(description="Judges in report order.")
    results: list[SerializeAsAny[ProbeResult]] = Field(
        description="Each probe that ran, in registry order, with p_adjusted and flags filled."
    )
    skipped: list[ProbeSkipped] = Field(
        default_factory=list, description="Probes that did not run, and why."
    )
    multiple_testing: MultipleTesting | None = Field(
        default=None, description="The one correction behind every flag (judges x probes)."
    )

    @field_validator("results", mode="before")
    @classmethod
    def _typed_results(cls, value: Any) -> Any:
        """Read each stored result back into its probe's own model, chosen by its ``probe``
        name (as `AuditResult` does), so probe-specific fields survive a round trip."""
        if not isinstance(value, list):
            return value
        return [
            probe_result_model(item["probe"]).model_validate(item)
            if isinstance(item, dict) and isinstance(item.get("probe"), str)
            else item
            for item in value
        ]

    def probes(self) -> dict[str, list[dict]]:
        """``report.json["probes"]``: probe name -> one finding per judge."""
        return {
            result.probe: [finding.model_dump(mode="json") for finding in result.findings]
            for result in self.results
        }
