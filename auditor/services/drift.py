"""Drift between two audit runs of the same judges: what changed, judge by judge.

Judges change under the same name (a provider updates a model), so a scheduled audit compares
each run with the previous run and with a designated baseline. Per judge:

- the change in affinity bias, ``delta = r_after - r_before``, where r is the partial
  correlation of judgment score and CAPA given candidate accuracy (SCIENCE.md section 2),
  both computed over the candidates usable in BOTH runs, with a paired percentile bootstrap
  95% CI: the common candidates are resampled with replacement, the same draw in both runs,
  and the difference of the two partial correlations is taken per resample;
- whether the flag appeared (flagged now, not before) or cleared;
- the change of the judge's own ground-truth accuracy (its multiple-choice accuracy);
- the verdict flip rate: among (candidate, item) pairs the judge gave a valid verdict on in
  both runs, the share where the verdict differs.

Pure: no I/O; randomness only from the `numpy.random.Generator` passed in (one child stream
per judge, spawned in judge-name order, so a judge's interval does not depend on which other
judges are compared). `drift_alerts` turns comparisons into notifications by a policy.

References: Efron & Tibshirani (1993), "An Introduction to the Bootstrap", ch. 13 (percentile
interval) for the paired bootstrap of a difference; the partial correlation is
`auditor.stats.correlation.partial_r` (equal to pingouin.partial_corr; spearman on ranks).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from auditor.schemas.result import AffinityReport, PairResult
from auditor.stats.correlation import partial_r

__all__ = [
    "DRIFT_SCHEMA_VERSION",
    "MIN_COMMON_CANDIDATES",
    "Against",
    "DriftAlert",
    "DriftComparison",
    "JudgeDrift",
    "RunSnapshot",
    "compare_runs",
    "drift_alerts",
    "history_point",
    "verdict_flips",
]

DRIFT_SCHEMA_VERSION: Final = "1.0"
MIN_COMMON_CANDIDATES: Final = 4
"""A partial correlation with one covariate needs at least 4 observations (n - 3 > 0)."""

Against = Literal["previous", "baseline"]
Verdicts = Mapping[tuple[str, str, str], int | None]


@dataclass(frozen=True)
class RunSnapshot:
    """One run as drift needs it: its analysis and its judges' verdicts.

    ``verdicts`` maps (judge, candidate, item) to 1, 0, or None (unparseable reply).
    """

    audit_id: str
    report: AffinityReport
    verdicts: Verdicts


class JudgeDrift(BaseModel):
    """How one judge changed between two runs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    judge: str
    status: Literal["ok", "insufficient_data", "not_in_both"] = Field(
        description="`not_in_both`: the judge is missing from one run; `insufficient_data`: "
        "fewer than 4 candidates usable in both runs, or r undefined in one of them."
    )
    reason: str | None = Field(default=None, description="Why the status is not `ok`.")
    n_candidates: int = Field(description="Candidates usable in both runs (the bootstrap units).")
    partial_r_before: float | None = Field(description="Partial r as the earlier run reported.")
    partial_r_after: float | None = Field(description="Partial r as the later run reported.")
    delta: float | None = Field(
        description="r_after - r_before, both over the common candidates (numpy closed form)."
    )
    ci95: tuple[float, float] | None = Field(
        description="Paired percentile bootstrap 95% CI of delta (candidates resampled)."
    )
    n_resamples: int = Field(description="Bootstrap resamples drawn.")
    n_degenerate: int = Field(description="Resamples without a defined r in one of the runs.")
    significant: bool = Field(description="The CI excludes 0.")
    flagged_before: bool | None = Field(description="Flagged in the earlier run.")
    flagged_after: bool | None = Field(description="Flagged in the later run.")
    flag_change: Literal["appeared", "cleared", "unchanged"] | None = Field(
        description="Flag appeared (now flagged, before not), cleared, or unchanged."
    )
    accuracy_before: float | None = Field(description="The judge's own MCQ accuracy before.")
    accuracy_after: float | None = Field(description="The judge's own MCQ accuracy after.")
    accuracy_delta: float | None = Field(description="accuracy_after - accuracy_before.")
    n_verdicts_compared: int = Field(
        description="(candidate, item) pairs with a valid verdict of the judge in both runs."
    )
    n_verdict_flips: int = Field(description="Of those, verdicts that differ.")
    flip_rate: float | None = Field(description="n_verdict_flips / n_verdicts_compared.")


class DriftComparison(BaseModel):
    """Every judge's drift between an earlier and a later run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal["1.0"] = DRIFT_SCHEMA_VERSION
    against: Against = Field(description="What the later run is compared with.")
    before_audit_id: str = Field(description="The earlier run's audit.")
    after_audit_id: str = Field(description="The later run's audit.")
    method: Literal["pearson", "spearman"] = Field(description="Correlation method (later run).")
    n_bootstrap: int = Field(description="Bootstrap resamples per judge.")
    judges: list[JudgeDrift] = Field(description="One entry per judge of either run.")


class DriftAlert(BaseModel):
    """A reason to notify: a judge became flagged, or its effect grew too much."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    judge: str
    reason: Literal["flag_appeared", "effect_grew", "effect_grew_since_baseline"]
    against: Against
    before_audit_id: str
    after_audit_id: str
    partial_r_before: float | None
    partial_r_after: float | None
    delta: float | None
    ci95: tuple[float, float] | None
    threshold: float | None = Field(description="The configured growth, for growth alerts.")


# --- statistics ---------------------------------------------------------------------------------


def _usable(pair: PairResult) -> bool:
    values = (pair.judgment_score, pair.capa, pair.accuracy)
    return not pair.excluded and all(v is not None and math.isfinite(v) for v in values)


def _pairs_of(report: AffinityReport, judge: str) -> dict[str, tuple[float, float, float]]:
    return {
        p.candidate: (float(p.judgment_score), float(p.capa), float(p.accuracy))  # type: ignore[arg-type]
        for p in report.pairs
        if p.judge == judge and _usable(p)
    }


def verdict_flips(before: Verdicts, after: Verdicts, judge: str) -> tuple[int, int]:
    """(compared, flipped): the judge's valid verdicts on the same (candidate, item) in both.

    >>> verdict_flips({("j", "a", "q1"): 1, ("j", "a", "q2"): 0, ("j", "b", "q1"): None},
    ...               {("j", "a", "q1"): 0, ("j", "a", "q2"): 0, ("j", "b", "q1"): 1}, "j")
    (2, 1)
    """
    compared = flipped = 0
    for key, verdict in before.items():
        if key[0] != judge or verdict is None:
            continue
        other = after.get(key)
        if other is None:
            continue
        compared += 1
        flipped += int(other != verdict)
    return compared, flipped


def _accuracy(report: AffinityReport, model: str) -> float | None:
    for summary in report.models:
        if summary.name == model:
            return summary.accuracy
    return None


def _difference(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else b - a


def _flag_change(
    before: bool | None, after: bool | None
) -> Literal["appeared", "cleared", "unchanged"] | None:
    if before is None or after is None:
        return None
    if after and not before:
        return "appeared"
    if before and not after:
        return "cleared"
    return "unchanged"


def _judge_drift(
    judge: str,
    before: RunSnapshot,
    after: RunSnapshot,
    method: str,
    n_bootstrap: int,
    rng: np.random.Generator,
) -> JudgeDrift:
    judges_before = {j.judge: j for j in before.report.judges}
    judges_after = {j.judge: j for j in after.report.judges}
    result_before, result_after = judges_before.get(judge), judges_after.get(judge)
    accuracy_before = _accuracy(before.report, judge)
    accuracy_after = _accuracy(after.report, judge)
    compared, flipped = verdict_flips(before.verdicts, after.verdicts, judge)
    common: dict[str, object] = {
        "judge": judge,
        "partial_r_before": result_before.partial_r if result_before else None,
        "partial_r_after": result_after.partial_r if result_after else None,
        "flagged_before": result_before.flagged if result_before else None,
        "flagged_after": result_after.flagged if result_after else None,
        "flag_change": _flag_change(
            result_before.flagged if result_before else None,
            result_after.flagged if result_after else None,
        ),
        "accuracy_before": accuracy_before,
        "accuracy_after": accuracy_after,
        "accuracy_delta": _difference(accuracy_before, accuracy_after),
        "n_verdicts_compared": compared,
        "n_verdict_flips": flipped,
        "flip_rate": flipped / compared if compared else None,
    }
    empty: dict[str, object] = {
        "delta": None,
        "ci95": None,
        "n_resamples": 0,
        "n_degenerate": 0,
        "significant": False,
    }
    if result_before is None or result_after is None:
        missing = "earlier" if result_before is None else "later"
        return JudgeDrift.model_validate(
            {
                **common,
                **empty,
                "status": "not_in_both",
                "reason": f"the judge is not in the {missing} run",
                "n_candidates": 0,
            }
        )
    pairs_before, pairs_after = _pairs_of(before.report, judge), _pairs_of(after.report, judge)
    candidates = sorted(set(pairs_before) & set(pairs_after))
    n = len(candidates)
    if n < MIN_COMMON_CANDIDATES:
        return JudgeDrift.model_validate(
            {
                **common,
                **empty,
                "status": "insufficient_data",
                "reason": f"{n} candidates usable in both runs; at least "
                f"{MIN_COMMON_CANDIDATES} are needed",
                "n_candidates": n,
            }
        )
    # (n,) columns of each run: score, CAPA, accuracy
    score_b, capa_b, acc_b = np.array([pairs_before[c] for c in candidates]).T
    score_a, capa_a, acc_a = np.array([pairs_after[c] for c in candidates]).T
    r_before = float(partial_r(score_b, capa_b, acc_b, method=method))
    r_after = float(partial_r(score_a, capa_a, acc_a, method=method))
    if not (math.isfinite(r_before) and math.isfinite(r_after)):
        return JudgeDrift.model_validate(
            {
                **common,
                **empty,
                "status": "insufficient_data",
                "reason": "the partial correlation is undefined over the common candidates "
                "in one of the runs (a constant or collinear variable)",
                "n_candidates": n,
            }
        )
    delta = r_after - r_before
    ci: tuple[float, float] | None = None
    degenerate = 0
    if n_bootstrap:
        index = rng.integers(0, n, size=(n_bootstrap, n))
        boot_before = partial_r(score_b[index], capa_b[index], acc_b[index], method=method)
        boot_after = partial_r(score_a[index], capa_a[index], acc_a[index], method=method)
        differences = np.asarray(boot_after) - np.asarray(boot_before)
        valid = differences[~np.isnan(differences)]
        degenerate = int(differences.size - valid.size)
        if valid.size:
            low, high = np.percentile(valid, [2.5, 97.5])
            ci = (float(low), float(high))
    return JudgeDrift.model_validate(
        {
            **common,
            "status": "ok",
            "reason": None,
            "n_candidates": n,
            "delta": delta,
            "ci95": ci,
            "n_resamples": n_bootstrap,
            "n_degenerate": degenerate,
            "significant": ci is not None and (ci[0] > 0 or ci[1] < 0),
        }
    )


def compare_runs(
    before: RunSnapshot,
    after: RunSnapshot,
    *,
    against: Against,
    n_bootstrap: int,
    rng: np.random.Generator,
) -> DriftComparison:
    """Every judge's drift from ``before`` to ``after`` (see the module doc for each measure).

    The bootstrap draws ``rng.spawn(k)`` child generators, one per judge in name order, and
    from each ``integers(0, n, size=(n_bootstrap, n))``. The correlation method is the later
    run's analysis method.
    """
    if n_bootstrap < 0:
        raise ValueError(f"n_bootstrap: must be >= 0; got {n_bootstrap}")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: must be a numpy.random.Generator; got {type(rng).__name__}")
    method = after.report.settings.method
    names = sorted({j.judge for j in before.report.judges} | {j.judge for j in after.report.judges})
    streams = rng.spawn(len(names))
    return DriftComparison(
        against=against,
        before_audit_id=before.audit_id,
        after_audit_id=after.audit_id,
        method=method,
        n_bootstrap=n_bootstrap,
        judges=[
            _judge_drift(name, before, after, method, n_bootstrap, stream)
            for name, stream in zip(names, streams, strict=True)
        ],
    )


# --- notifications ------------------------------------------------------------------------------


def _grew(drift: JudgeDrift, threshold: float, require_significant: bool) -> bool:
    if drift.status != "ok" or drift.delta is None:
        return False
    if require_significant and not (drift.ci95 is not None and drift.ci95[0] > 0):
        return False
    return drift.delta > threshold


def _alert(
    drift: JudgeDrift, comparison: DriftComparison, reason: str, threshold: float | None
) -> DriftAlert:
    return DriftAlert.model_validate(
        {
            "judge": drift.judge,
            "reason": reason,
            "against": comparison.against,
            "before_audit_id": comparison.before_audit_id,
            "after_audit_id": comparison.after_audit_id,
            "partial_r_before": drift.partial_r_before,
            "partial_r_after": drift.partial_r_after,
            "delta": drift.delta,
            "ci95": drift.ci95,
            "threshold": threshold,
        }
    )


def drift_alerts(
    previous: DriftComparison | None,
    baseline: DriftComparison | None,
    *,
    on_flag: bool = True,
    effect_growth: float | None = 0.2,
    require_significant: bool = True,
    previous_against_baseline: DriftComparison | None = None,
) -> list[DriftAlert]:
    """The notifications a run warrants.

    - ``flag_appeared``: the judge is flagged now and was not in the previous run;
    - ``effect_grew``: its partial r grew by more than ``effect_growth`` since the previous
      run (with ``require_significant``, only if the CI of the change is above 0);
    - ``effect_grew_since_baseline``: it now exceeds the baseline by more than
      ``effect_growth`` and did not yet in the previous run (``previous_against_baseline``:
      the previous run's comparison with the same baseline), so a lasting drift is reported
      once, when it crosses, not at every run. Left out when the baseline is the previous run.
    """
    alerts: list[DriftAlert] = []
    if previous is not None:
        for drift in previous.judges:
            if on_flag and drift.flag_change == "appeared":
                alerts.append(_alert(drift, previous, "flag_appeared", None))
            if effect_growth is not None and _grew(drift, effect_growth, require_significant):
                alerts.append(_alert(drift, previous, "effect_grew", effect_growth))
    same_as_previous = (
        previous is not None
        and baseline is not None
        and baseline.before_audit_id == previous.before_audit_id
    )
    if baseline is not None and effect_growth is not None and not same_as_previous:
        earlier: dict[str, JudgeDrift] = {}
        if (
            previous_against_baseline is not None
            and previous_against_baseline.before_audit_id == baseline.before_audit_id
        ):
            earlier = {d.judge: d for d in previous_against_baseline.judges}
        for drift in baseline.judges:
            if not _grew(drift, effect_growth, require_significant):
                continue
            before = earlier.get(drift.judge)
            if before is not None and _grew(before, effect_growth, require_significant):
                continue  # already beyond the baseline at the previous run: reported then
            alerts.append(_alert(drift, baseline, "effect_grew_since_baseline", effect_growth))
    return alerts


def history_point(report: AffinityReport) -> dict[str, dict[str, object]]:
    """Each judge's partial r, CI and flag in one run (a point of the drift history plot)."""
    return {
        j.judge: {
            "partial_r": j.partial_r,
            "ci95": list(j.ci95) if j.ci95 is not None else None,
            "flagged": j.flagged,
            "status": j.status,
        }
        for j in report.judges
    }
