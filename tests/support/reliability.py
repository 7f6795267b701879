"""Simulated worlds with planted reliability truths (auditor.ecosystem) for the reliability
probe and report tests."""

from __future__ import annotations

from typing import Any

import numpy as np

from auditor.ecosystem import Ecosystem, EcosystemConfig, FamilyConfig
from auditor.probes import prompt_stability, reliability, supervision
from auditor.probes.analysis import analyze
from auditor.probes.base import ProbeContext
from auditor.schemas.bundle import Bundle
from auditor.schemas.result import AnalysisSettings, AuditResult

ALPHA = 0.05
PROBES = {
    "reliability": reliability.PROBE,
    "supervision": supervision.PROBE,
    "prompt_stability": prompt_stability.PROBE,
}


def world(
    seed: int, families: int = 3, size: int = 3, n_items: int = 150, **planted: Any
) -> Ecosystem:
    return Ecosystem(
        EcosystemConfig(
            seed=seed,
            n_items=n_items,
            families=[FamilyConfig(name=name, size=size) for name in "abcd"[:families]],
            **planted,
        )
    )


def run(probe: str, bundle: Bundle, **settings: Any) -> Any:
    context = ProbeContext(
        bundle=bundle,
        settings=AnalysisSettings(alpha=ALPHA, **settings),
        rng=np.random.default_rng(0),
    )
    return PROBES[probe].compute(context)


def reliability_audit(bundle: Bundle, **settings: Any) -> AuditResult:
    """The whole analysis of ``bundle`` (every probe), as the audit report renders it: few
    resamples (the report tests check rendering, not the statistics)."""
    options = {"n_bootstrap": 100, "n_permutations": 100, "alpha": ALPHA, **settings}
    return analyze(bundle, AnalysisSettings(**options))


def planted_world(seed: int = 2, n_items: int = 60) -> Ecosystem:
    """Every reliability finding planted: avoidance falling with size, a judge (a-1) whose
    false approval rises on easy items, a prompt-sensitive model (a-2) and judge (b-1), and
    affinity bias, so the per-template affinity r has something to show."""
    return world(
        seed,
        n_items=n_items,
        avoidance=0.5,
        judges=["a-1", "b-1"],
        judge_false_approval_slope={"a-1": 1.0},
        model_prompt_sensitivity={"a-2": 1.0, "b-1": 1.0},
        affinity_strength=0.5,
    )
