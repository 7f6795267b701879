"""Analyzed simulated worlds (drift, signing and trail tests)."""

from __future__ import annotations

from functools import cache
from typing import Any

from auditor.ecosystem import Ecosystem, EcosystemConfig, FamilyConfig
from auditor.probes.affinity import analyze_affinity
from auditor.schemas.result import AnalysisSettings
from auditor.services.drift import (
    RunSnapshot,
)

JUDGES = ("atlas-1", "boreal-1", "cygnus-1")


@cache
def world_run(atlas_affinity: float, seed: int = 11) -> RunSnapshot:
    """A simulated world's complete bundle, analyzed: 3 families of 5 models, 80 items; the
    planted affinity of atlas-1 as given, the other judges grade by the truth alone."""
    config = EcosystemConfig(
        seed=seed,
        n_items=80,
        families=[
            FamilyConfig(name=f, size=5, trap_strength=2.5) for f in ("atlas", "boreal", "cygnus")
        ],
        judges=list(JUDGES),
        judge_affinity={"atlas-1": atlas_affinity},
        p_hit=0.95,
        p_miss=0.05,
    )
    bundle = Ecosystem(config).bundle()
    report = analyze_affinity(
        bundle, AnalysisSettings(n_bootstrap=0, n_permutations=0, min_candidates=5)
    )
    verdicts = {(v.judge, v.candidate, v.item): v.verdict for v in bundle.verdicts}
    return RunSnapshot(f"world-{seed}-{atlas_affinity}", report, verdicts)


def three_family_document(seed: int = 3) -> dict[str, Any]:
    """A simulated bundle as a JSON document: 3 families of 3 models, judges a-1 and b-1, 25
    items."""
    world = Ecosystem(
        EcosystemConfig(
            seed=seed,
            n_items=25,
            families=[FamilyConfig(name=f, size=3) for f in ("a", "b", "c")],
            judges=["a-1", "b-1"],
        )
    )
    return world.bundle().model_dump(mode="json")
