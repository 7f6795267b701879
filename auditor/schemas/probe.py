"""The common shape of a probe's result: what every audit measure reports per judge.

Each probe has its own versioned result model (a subclass of `ProbeResult`) holding its details;
its `findings` give one headline entry per judge (or per model, for model-level measures) in the
shape the scorecard, the multiple-testing correction across judges x probes, and
``report.json["probes"]`` read. A probe-specific finding subclasses `ProbeFinding` to add its own
named fields (never an untyped dict).
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CORRECTION_NAMES",
    "MultipleTesting",
    "ProbeFinding",
    "ProbeResult",
    "ProbeSkipped",
    "ProbeStatus",
    "TestingFamily",
    "multiple_testing",
]

ProbeStatus = Literal["ok", "insufficient_data"]
Correction = Literal["holm", "fdr_bh"]
TestingFamily = Literal["judges", "judges x probes"]
"""`judges`: one probe's findings alone (a stand-alone analysis); `judges x probes`: every
finding with a p-value of every probe that ran (an audit, the battery)."""

CORRECTION_NAMES: Final[dict[str, str]] = {
    "holm": "Holm (family-wise error rate)",
    "fdr_bh": "Benjamini-Hochberg (false discovery rate)",
}

_FROZEN = ConfigDict(frozen=True, extra="forbid")


def _open_base(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """The JSON schema of the base class itself (what the API's document names for every
    probe's result and findings) admits the fields each probe's subclass adds; a subclass's own
    schema stays closed. Parsing is unchanged: both refuse unknown fields."""
    if model in (ProbeFinding, ProbeResult):
        schema["additionalProperties"] = True


_BASE = ConfigDict(frozen=True, extra="forbid", json_schema_extra=_open_base)


class ProbeFinding(BaseModel):
    """One judge's (or model's) headline number for one probe."""

    model_config = _BASE

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
    correction: str | None = Field(
        default=None,
        description="The multiple-testing family and method that produced p_adjusted and "
        "decide flagged, e.g. `holm across judges x probes (28 tests)`; the result's "
        "`multiple_testing` states it in full. Null while no correction was applied.",
    )


class ProbeResult(BaseModel):
    """Base of every probe's versioned result."""

    model_config = _BASE

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


class MultipleTesting(BaseModel):
    """The one multiple-testing correction behind every flag of a result: which findings form
    the family, by which method their p-values were adjusted, and the flagging rule."""

    model_config = _FROZEN

    method: Correction = Field(description="`holm` (FWER) or `fdr_bh` (FDR) adjusted p-values.")
    alpha: float = Field(description="A finding is flagged when its adjusted p is below this.")
    family: TestingFamily = Field(description="Which findings were adjusted together.")
    probes: list[str] = Field(description="The probes whose findings with a p are in the family.")
    n_tests: int = Field(ge=0, description="Number of p-values adjusted together.")
    label: str = Field(description="Short form each finding carries in its `correction` field.")
    statement: str = Field(description="The rule in one sentence, as the reports print it.")


def multiple_testing(
    method: Correction, alpha: float, family: TestingFamily, probes: list[str], n_tests: int
) -> MultipleTesting:
    """The description of one correction (the adjusting itself is
    `auditor.stats.multitest.adjust_p_values`).

    >>> multiple_testing("holm", 0.05, "judges x probes", ["affinity", "position"], 8).label
    'holm across judges x probes (8 tests)'
    """
    label = f"{method} across {family} ({n_tests} test{'s' if n_tests != 1 else ''})"
    where = ", ".join(probes) if probes else "no probe reported a p-value"
    statement = (
        f"One correction for the whole result: {CORRECTION_NAMES[method]} across the "
        f"{n_tests} p-value{'s' if n_tests != 1 else ''} of {family} ({where}). A finding is "
        f"flagged when its adjusted p < {alpha:g} and its effect points the biased way."
    )
    return MultipleTesting(
        method=method,
        alpha=alpha,
        family=family,
        probes=probes,
        n_tests=n_tests,
        label=label,
        statement=statement,
    )
