"""Drift between two runs (auditor.services.drift). References: pingouin.partial_corr (point
estimates and a slow loop over the same bootstrap draws), hand-worked verdict flips, and simulated
worlds with a planted affinity that changes (or does not) between runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pingouin
import pytest

from auditor.services.drift import (
    Against,
    DriftComparison,
    RunSnapshot,
    compare_runs,
    drift_alerts,
    verdict_flips,
)
from auditor.stats.correlation import partial_r
from tests.support.worlds import JUDGES, world_run


def by_judge(comparison: DriftComparison) -> dict:
    return {j.judge: j for j in comparison.judges}


# --- building blocks ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["pearson", "spearman"])
def test_partial_r_equals_pingouin(method: str) -> None:
    rng = np.random.default_rng(5)
    for n in (5, 9, 30):
        z = rng.normal(size=n)
        x = z + rng.normal(size=n)
        y = 0.5 * x - z + rng.normal(size=n)
        frame = pd.DataFrame({"x": x, "y": y, "z": z})
        reference = pingouin.partial_corr(frame, x="x", y="y", covar="z", method=method)
        assert partial_r(x, y, z, method=method) == pytest.approx(reference["r"].iloc[0], abs=1e-12)


def test_partial_r_is_undefined_for_a_constant_or_collinear_variable() -> None:
    x = np.array([1.0, 2, 3, 4, 5])
    assert np.isnan(partial_r(x, np.ones(5), np.array([2.0, 1, 4, 3, 5])))
    assert np.isnan(partial_r(x, np.array([2.0, 1, 4, 3, 5]), 2 * x + 1))  # x explained by z
    with pytest.raises(ValueError, match="method"):
        partial_r(x, x, x, method="kendall")


def test_verdict_flips_count_valid_verdicts_on_the_same_items_only() -> None:
    # hand-worked: q1 flips; q2 agrees; b/q1 was unparseable before; c/q9 is only in one run
    before = {("j", "a", "q1"): 1, ("j", "a", "q2"): 0, ("j", "b", "q1"): None, ("k", "a", "q1"): 1}
    after = {("j", "a", "q1"): 0, ("j", "a", "q2"): 0, ("j", "b", "q1"): 1, ("j", "c", "q9"): 1}
    assert verdict_flips(before, after, "j") == (2, 1)
    assert verdict_flips(before, after, "k") == (0, 0)


@pytest.mark.slow
def test_bootstrap_ci_of_the_change_equals_a_pingouin_loop_over_the_same_draws() -> None:
    before, after = world_run(0.0), world_run(0.8)
    n_bootstrap = 100
    comparison = compare_runs(
        before, after, against="previous", n_bootstrap=n_bootstrap, rng=np.random.default_rng(42)
    )
    streams = np.random.default_rng(42).spawn(len(JUDGES))  # one child per judge, name order
    for judge, stream in zip(sorted(JUDGES), streams, strict=True):
        drift = by_judge(comparison)[judge]

        def table(run: RunSnapshot, judge: str = judge) -> pd.DataFrame:
            rows = {
                p.candidate: (p.judgment_score, p.capa, p.accuracy)
                for p in run.report.pairs
                if p.judge == judge and not p.excluded
            }
            return pd.DataFrame.from_dict(rows, orient="index", columns=["score", "capa", "acc"])

        frame_before, frame_after = table(before), table(after)
        common = sorted(set(frame_before.index) & set(frame_after.index))
        assert drift.n_candidates == len(common) == 14
        index = stream.integers(0, len(common), size=(n_bootstrap, len(common)))
        differences = []
        for draw in index:
            chosen = [common[i] for i in draw]
            r = [
                pingouin.partial_corr(
                    frame.loc[chosen].reset_index(drop=True), x="score", y="capa", covar="acc"
                )["r"].iloc[0]
                for frame in (frame_before, frame_after)
            ]
            differences.append(r[1] - r[0])
        low, high = np.percentile(differences, [2.5, 97.5])
        assert drift.ci95 == pytest.approx((low, high), abs=1e-9)
        point = [
            pingouin.partial_corr(frame.loc[common], x="score", y="capa", covar="acc")["r"].iloc[0]
            for frame in (frame_before, frame_after)
        ]
        assert drift.delta == pytest.approx(point[1] - point[0], abs=1e-12)


def test_same_seed_gives_the_same_intervals_and_another_seed_other_draws() -> None:
    before, after = world_run(0.0), world_run(0.8)

    def compare(seed: int) -> DriftComparison:
        return compare_runs(
            before, after, against="previous", n_bootstrap=300, rng=np.random.default_rng(seed)
        )

    assert compare(3) == compare(3)
    assert by_judge(compare(3))["atlas-1"].ci95 != by_judge(compare(4))["atlas-1"].ci95


# --- planted truth -----------------------------------------------------------------------------


def test_planted_affinity_appearing_between_runs_is_detected_for_that_judge_only() -> None:
    before, after = world_run(0.0), world_run(0.8)  # the same world; atlas-1 becomes biased
    comparison = compare_runs(
        before, after, against="previous", n_bootstrap=2000, rng=np.random.default_rng(0)
    )
    drift = by_judge(comparison)
    atlas = drift["atlas-1"]
    assert atlas.status == "ok" and atlas.n_candidates == 14
    assert atlas.flagged_before is False and atlas.flagged_after is True
    assert atlas.flag_change == "appeared"
    assert atlas.delta is not None and atlas.delta > 0.4
    assert atlas.ci95 is not None and atlas.ci95[0] > 0 and atlas.significant
    assert atlas.n_verdicts_compared == 15 * 80 and atlas.flip_rate is not None
    assert 0.1 < atlas.flip_rate < 0.5  # verdicts on answers unlike its own now flip often
    assert atlas.accuracy_delta == 0.0  # its own multiple-choice answers did not change
    for name in ("boreal-1", "cygnus-1"):  # unchanged judges: exactly no drift
        other = drift[name]
        assert other.delta == 0.0 and other.ci95 == (0.0, 0.0) and not other.significant
        assert other.flag_change == "unchanged"
        assert (other.n_verdict_flips, other.flip_rate) == (0, 0.0)
        assert other.accuracy_delta == 0.0
    alerts = drift_alerts(comparison, None, effect_growth=0.2)
    assert sorted((a.judge, a.reason) for a in alerts) == [
        ("atlas-1", "effect_grew"),
        ("atlas-1", "flag_appeared"),
    ]


def test_nothing_changed_same_seed_means_no_drift_and_no_alert() -> None:
    first, second = world_run(0.8), world_run(0.8)
    second = RunSnapshot("second run", second.report, dict(second.verdicts))
    comparison = compare_runs(
        first, second, against="previous", n_bootstrap=2000, rng=np.random.default_rng(0)
    )
    for drift in comparison.judges:
        assert drift.delta == 0.0 and drift.ci95 == (0.0, 0.0) and not drift.significant
        assert drift.flag_change == "unchanged" and drift.n_verdict_flips == 0
    assert by_judge(comparison)["atlas-1"].flagged_after is True  # still biased, not new
    assert drift_alerts(comparison, comparison, effect_growth=0.0, require_significant=False) == []


def test_a_cleared_flag_and_a_judge_missing_from_one_run() -> None:
    before, after = world_run(0.8), world_run(0.0)
    trimmed = after.report.model_copy(
        update={"judges": [j for j in after.report.judges if j.judge != "cygnus-1"]}
    )
    comparison = compare_runs(
        before,
        RunSnapshot("trimmed", trimmed, after.verdicts),
        against="baseline",
        n_bootstrap=100,
        rng=np.random.default_rng(1),
    )
    drift = by_judge(comparison)
    assert drift["atlas-1"].flag_change == "cleared" and drift["atlas-1"].delta < -0.4
    assert drift["cygnus-1"].status == "not_in_both"
    assert drift["cygnus-1"].reason == "the judge is not in the later run"
    assert drift_alerts(comparison, None) == []  # a judge getting better is no alarm


def test_growth_since_the_baseline_alerts_once_when_it_crosses_the_threshold() -> None:
    base, middle, late = world_run(0.0), world_run(0.3), world_run(0.8)

    def against(before: RunSnapshot, after: RunSnapshot, kind: Against) -> DriftComparison:
        return compare_runs(
            before, after, against=kind, n_bootstrap=1000, rng=np.random.default_rng(0)
        )

    previous = against(middle, late, "previous")  # run 3 against run 2
    baseline = against(base, late, "baseline")  # run 3 against run 1
    middle_vs_base = against(base, middle, "baseline")  # run 2 against run 1
    assert by_judge(middle_vs_base)["atlas-1"].delta == pytest.approx(0.473, abs=1e-3)
    assert by_judge(baseline)["atlas-1"].delta == pytest.approx(0.621, abs=1e-3)

    def crossings(threshold: float) -> list[tuple[str, str, float | None]]:
        alerts = drift_alerts(
            previous,
            baseline,
            on_flag=False,
            effect_growth=threshold,
            require_significant=False,
            previous_against_baseline=middle_vs_base,
        )
        return [
            (a.judge, a.against, a.threshold)
            for a in alerts
            if a.reason == "effect_grew_since_baseline"
        ]

    assert crossings(0.5) == [("atlas-1", "baseline", 0.5)]  # 0.473 at run 2, 0.621 at run 3
    assert crossings(0.3) == []  # beyond 0.3 already at run 2: reported then, not again


def test_invalid_arguments_are_named() -> None:
    run = world_run(0.0)
    with pytest.raises(ValueError, match="n_bootstrap"):
        compare_runs(run, run, against="previous", n_bootstrap=-1, rng=np.random.default_rng())
    with pytest.raises(ValueError, match="rng"):
        compare_runs(run, run, against="previous", n_bootstrap=1, rng=7)  # type: ignore[arg-type]
