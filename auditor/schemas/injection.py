"""Result of the injection probe: null and adversarial answers ("master keys") that win."""

from __future__ import annotations

from typing import Final, Literal

from pydantic import Field

from auditor.schemas.probe import ProbeFinding, ProbeResult

__all__ = ["INJECTION_SCHEMA_VERSION", "InjectionFinding", "InjectionResult"]

INJECTION_SCHEMA_VERSION: Final = "1.0"


class InjectionFinding(ProbeFinding):
    """``estimate`` = false-positive rate: share of parsed verdicts in which an injected
    answer won (pairwise) or was judged correct (pointwise); ``ci95`` Clopper–Pearson;
    ``p_value`` the exact one-sided binomial test that the rate exceeds ``tolerance``."""

    false_positives: int = Field(ge=0, description="Verdicts won by an injected answer.")
    tolerance: float = Field(description="False-positive rate tolerated before flagging.")
    by_injection: dict[str, tuple[int, int]] = Field(
        default_factory=dict, description="Injection name -> (false positives, verdicts)."
    )
    unparseable: int = Field(default=0, ge=0, description="Unparseable verdicts (not counted).")


class InjectionResult(ProbeResult):
    probe: Literal["injection"] = "injection"
    schema_version: str = INJECTION_SCHEMA_VERSION
    findings: list[InjectionFinding] = Field(default_factory=list)  # type: ignore[assignment]
