"""Running the judge bias battery on a bundle: each battery probe whose inputs the bundle
holds, then one multiple-testing correction across every judge x probe finding.

A finding's flag, set by its probe from the unadjusted p and the biased direction, is kept only
where the adjusted p is below alpha too (the adjusted p is never below the unadjusted one, so
no finding gains a flag).
"""

from __future__ import annotations

import numpy as np

from auditor.probes import REGISTRY, ProbeContext
from auditor.schemas.battery import BatteryResult
from auditor.schemas.bundle import Bundle
from auditor.schemas.probe import ProbeResult, ProbeSkipped
from auditor.schemas.result import AnalysisSettings

__all__ = ["BATTERY", "adjust_across", "run_battery"]

BATTERY = (
    "position",
    "verbosity",
    "self_preference",
    "cues",
    "injection",
    "repeat",
    "human_agreement",
)


def adjust_across(results: list[ProbeResult], alpha: float, correction: str) -> list[ProbeResult]:
    """The results with ``p_adjusted`` filled (Holm or Benjamini–Hochberg via statsmodels
    across all findings with a p) and each flag kept only where p_adjusted < alpha."""
    from statsmodels.stats.multitest import multipletests

    where = [
        (r, f)
        for r, result in enumerate(results)
        for f, finding in enumerate(result.findings)
        if finding.p_value is not None
    ]
    adjusted: dict[tuple[int, int], float] = {}
    if where:
        p_values = np.array([results[r].findings[f].p_value for r, f in where], dtype=float)
        corrected = multipletests(p_values, alpha=alpha, method=correction)[1]
        adjusted = {key: float(p) for key, p in zip(where, corrected, strict=True)}
    out = []
    for r, result in enumerate(results):
        findings = []
        for f, finding in enumerate(result.findings):
            p = adjusted.get((r, f))
            findings.append(
                finding.model_copy(
                    update={
                        "p_adjusted": p,
                        "flagged": bool(finding.flagged and p is not None and p < alpha),
                    }
                )
            )
        out.append(result.model_copy(update={"findings": findings}))
    return out


def run_battery(bundle: Bundle, settings: AnalysisSettings | None = None) -> BatteryResult:
    """Every battery probe the bundle supports (the others listed with the reason)."""
    settings = settings or AnalysisSettings()
    results: list[ProbeResult] = []
    skipped: list[ProbeSkipped] = []
    for probe in REGISTRY:
        if probe.name not in BATTERY:
            continue
        reason = probe.missing_inputs(bundle)
        if reason is not None:
            skipped.append(ProbeSkipped(probe=probe.name, reason=reason))
            continue
        seed = np.random.SeedSequence([settings.seed, *probe.name.encode()])
        results.append(probe.compute(ProbeContext(bundle, settings, np.random.default_rng(seed))))
    results = adjust_across(results, settings.alpha, settings.correction)
    judges = [
        m.name for m in bundle.models if any(f.judge == m.name for r in results for f in r.findings)
    ]
    return BatteryResult(
        alpha=settings.alpha,
        correction=settings.correction,
        judges=judges,
        results=results,
        skipped=skipped,
    )
