"""Each battery probe against planted truth (battery_world): a planted weakness is flagged in
>= 90% of seeds at the test's size, and a clean judge is flagged at <= alpha over many seeds."""

from __future__ import annotations

import math

import pytest

from tests.support.battery_world import PARTS_OF_PROBE, Planted, findings, simulate

# Power and calibration over 40 + 160 simulated audits per probe: tens of seconds (scripts/test
# --fast leaves them out; CI runs them).
pytestmark = pytest.mark.slow

ALPHA = 0.05
POWER_SEEDS = 40
CALIBRATION_SEEDS = 160
PROBES = (
    "position",
    "verbosity",
    "self_preference",
    "cues",
    "injection",
    "repeat",
    "human_agreement",
)

PLANTED = {
    "clean": Planted(noise=0.02),
    "position": Planted(position=0.3),
    "verbose": Planted(verbosity=0.68),
    "selfish": Planted(self_bonus=0.2, family="beta"),
    "cued": Planted(cue=0.3, noise=0.05),
    "injected": Planted(injection=0.15),
    "noisy": Planted(noise=0.8, skill=0.7),
    "random": Planted(skill=0.5),
}
WEAK_JUDGE = {
    "position": "position",
    "verbosity": "verbose",
    "self_preference": "selfish",
    "cues": "cued",
    "injection": "injected",
    "repeat": "noisy",
    "human_agreement": "random",
}


@pytest.fixture(scope="module")
def power_runs():
    """Per probe and seed: the findings of the weak judge and the clean one, 100 items."""
    runs = {}
    for probe in PROBES:
        judges = {"clean": PLANTED["clean"], WEAK_JUDGE[probe]: PLANTED[WEAK_JUDGE[probe]]}
        runs[probe] = [
            findings(simulate(judges, 100, seed, parts=PARTS_OF_PROBE[probe]), probe, ALPHA)
            for seed in range(POWER_SEEDS)
        ]
    return runs


@pytest.fixture(scope="module")
def calibration_runs():
    """Per probe: the clean judge alone over many seeds, 50 items."""
    clean = {"clean": PLANTED["clean"]}
    return {
        probe: [
            findings(simulate(clean, 50, 10_000 + seed, parts=PARTS_OF_PROBE[probe]), probe, ALPHA)[
                "clean"
            ]
            for seed in range(CALIBRATION_SEEDS)
        ]
        for probe in PROBES
    }


@pytest.mark.parametrize("probe", PROBES)
def test_planted_weakness_is_found_with_power_at_least_0_9(power_runs, probe):
    judge = WEAK_JUDGE[probe]
    found = sum(run[judge].flagged for run in power_runs[probe])
    assert found / POWER_SEEDS >= 0.9, f"{probe}: {judge} flagged in {found}/{POWER_SEEDS}"


@pytest.mark.parametrize("probe", PROBES)
def test_clean_judge_in_the_full_world_is_rarely_flagged(power_runs, probe):
    flagged = sum(run["clean"].flagged for run in power_runs[probe])
    assert flagged <= 5, f"{probe}: clean flagged in {flagged}/{POWER_SEEDS}"


@pytest.mark.parametrize("probe", PROBES)
def test_clean_judge_is_flagged_at_most_alpha(calibration_runs, probe):
    flagged = sum(finding.flagged for finding in calibration_runs[probe])
    sd = math.sqrt(CALIBRATION_SEEDS * ALPHA * (1 - ALPHA))
    # flagged at <= alpha: the count may exceed alpha * seeds only by sampling error (2.33 sd)
    assert flagged <= CALIBRATION_SEEDS * ALPHA + 2.33 * sd, f"{probe}: {flagged} flagged"
    assert all(finding.status == "ok" for finding in calibration_runs[probe])
