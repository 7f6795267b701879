"""Simulated worlds with planted reliability truths (auditor.ecosystem) for the probe tests."""

from __future__ import annotations

from typing import Any

import numpy as np

from auditor.ecosystem import Ecosystem, EcosystemConfig, FamilyConfig
from auditor.probes import prompt_stability, reliability, supervision
from auditor.probes.base import ProbeContext
from auditor.schemas.bundle import Bundle
from auditor.schemas.result import AnalysisSettings

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


def run(probe: str, bundle: Bundle) -> Any:
    context = ProbeContext(
        bundle=bundle, settings=AnalysisSettings(alpha=ALPHA), rng=np.random.default_rng(0)
    )
    return PROBES[probe].compute(context)
