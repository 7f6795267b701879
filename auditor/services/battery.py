"""Running the judge bias battery on a bundle: each battery probe whose inputs the bundle
holds, then the one multiple-testing correction across every judge x probe finding
(`auditor.probes.analysis.adjust_family`, the same the audit's analysis uses).

A finding's flag, set by its probe from the unadjusted p and the biased direction, is kept only
where the adjusted p is below alpha too (the adjusted p is never below the unadjusted one, so
no finding gains a flag).
"""

from __future__ import annotations

from auditor.probes import REGISTRY
from auditor.probes.analysis import adjust_family, run_probes
from auditor.schemas.battery import BatteryResult
from auditor.schemas.bundle import Bundle
from auditor.schemas.result import AnalysisSettings

__all__ = ["BATTERY", "run_battery"]

BATTERY = (
    "position",
    "verbosity",
    "self_preference",
    "cues",
    "injection",
    "repeat",
    "human_agreement",
)


def run_battery(bundle: Bundle, settings: AnalysisSettings | None = None) -> BatteryResult:
    """Every battery probe the bundle supports (the others listed with the reason)."""
    settings = settings or AnalysisSettings()
    probes = tuple(probe for probe in REGISTRY if probe.name in BATTERY)
    computed, skipped = run_probes(bundle, settings, probes)
    results, family = adjust_family(computed, settings)
    judges = [
        m.name
        for m in bundle.models
        if any(f.judge == m.name for r in results.values() for f in r.findings)
    ]
    return BatteryResult(
        alpha=settings.alpha,
        correction=settings.correction,
        judges=judges,
        results=list(results.values()),
        skipped=skipped,
        multiple_testing=family,
    )
