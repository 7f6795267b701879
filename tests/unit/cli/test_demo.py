"""The demo's planted findings hold at its size, across seeds.

The simulated provider answers every call of the demo from the planted world of its spec
(`auditor.ecosystem.Ecosystem`), so the world's own complete bundle is what the demo collects
through litellm; analyzed here directly, without the calls. The demo is sized (items, trap
strength) so that the two judges with planted affinity bias are flagged and the two without are
not, for every seed checked, not only the default one.
"""

from __future__ import annotations

import pytest

from auditor.cli.main import DEMO_ITEMS, demo_spec
from auditor.ecosystem import Ecosystem
from auditor.probes.affinity import analyze_affinity
from auditor.schemas.spec import parse_spec

BIASED, UNBIASED = ("atlas-1", "boreal-1"), ("cygnus-1", "draco-1")


def _flags(seed: int) -> dict[str, bool]:
    spec = parse_spec(demo_spec(seed))
    assert spec.simulation is not None
    bundle = Ecosystem(spec.simulation).bundle()
    # the flag rests on the partial correlation's adjusted p, not on the resampling checks
    settings = spec.analysis.model_copy(update={"n_bootstrap": 0, "n_permutations": 0})
    return {j.judge: j.flagged for j in analyze_affinity(bundle, settings).judges}


def test_the_demo_plans_few_calls() -> None:
    spec = parse_spec(demo_spec())
    assert spec.simulation is not None and spec.simulation.n_items == DEMO_ITEMS == 30
    models, judges = len(spec.candidates) + len(spec.judges), len(spec.judges)
    # an MCQ answer and a free-form answer per model and item, a verdict per judge, candidate
    # (every other model) and item
    assert DEMO_ITEMS * (2 * models + judges * (models - 1)) == 4_200


@pytest.mark.parametrize("seed", [7, *range(6)])
def test_biased_judges_are_flagged_and_the_others_not(seed: int) -> None:
    flags = _flags(seed)
    assert [flags[j] for j in BIASED] == [True, True], flags
    assert [flags[j] for j in UNBIASED] == [False, False], flags
