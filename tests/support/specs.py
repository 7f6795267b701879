"""Simulated audit specs."""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def small_spec(
    *,
    seed: int = 3,
    n_items: int = 40,
    sizes: int = 3,
    families: tuple[str, ...] = ("atlas", "boreal", "cygnus"),
    affinity: dict[str, float] | None = None,
    trap_strength: float = 2.5,
    provider: dict[str, Any] | None = None,
    analysis: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A small simulated audit: every family's first model judges everyone else."""
    judges = [f"{family}-1" for family in families]
    spec: dict[str, Any] = {
        "name": "test audit",
        "simulation": {
            "seed": seed,
            "n_items": n_items,
            "families": [
                {"name": f, "size": sizes, "trap_strength": trap_strength} for f in families
            ],
            "judges": judges,
            "judge_affinity": affinity or {},
            "p_hit": 0.95,
            "p_miss": 0.05,
        },
        "judges": [{"model": f"sim/{j}", "name": j, "family": j.split("-")[0]} for j in judges],
        "candidates": [
            {"model": f"sim/{f}-{k}", "name": f"{f}-{k}", "family": f}
            for f in families
            for k in range(2, sizes + 1)
        ],
        "analysis": {
            "n_bootstrap": 200,
            "n_permutations": 200,
            "min_candidates": 4,
            **(analysis or {}),
        },
    }
    if provider is not None:
        spec["simulated_provider"] = provider
    spec.update(extra)
    return spec
