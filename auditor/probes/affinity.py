"""Affinity bias of LLM judges: does a judge grade more kindly the candidates that think like it?

The protocol of Goel et al. (2025), "Great Models Think Alike and this Undermines AI Oversight",
arXiv 2502.04313, section "LLM-as-a-judge" (SCIENCE.md section 2). For a judge ``j`` and each
candidate ``c`` it has verdicts on::

    score(j, c)   = #"1" / (#"1" + #"0")     over j's verdicts on c's free-form answers
    capa(j, c)    = CAPA of j and c on the multiple-choice items (`auditor.stats.similarity`)
    accuracy(c)   = c's ground-truth multiple-choice accuracy

Null verdicts (unparseable judge output) are invalid: counted and reported, never part of a
score. Then, per judge over its candidates (self-pair, configured exclusions and pairs lacking
data left out, each with its reason):

- the partial correlation of score and CAPA controlling for accuracy
  (`auditor.stats.correlation.partial_correlation`, equal to
  ``pingouin.partial_corr(x="score", y="capa", covar="accuracy")``): n, r, p, and its Fisher-z
  95% CI unrounded (pingouin displays it rounded to two decimals);
- the raw correlation of score and CAPA, and OLS ``score ~ const + capa + accuracy``
  (`auditor.stats.regression`);
- a percentile bootstrap CI of r (candidates resampled) and a Freedman-Lane permutation p
  (`auditor.stats.resampling`);
- Holm and Benjamini-Hochberg adjusted p-values across the judges (`auditor.stats.multitest`);
  a judge is flagged when its adjusted p is below alpha and its r exceeds ``min_effect``;
- a fixed-effect Fisher-z pooled r across judges (`auditor.stats.meta`).

This module turns a bundle into those inputs and the results into the result schema; the
statistics live in `auditor.stats`. Pure: no I/O, no clock. Randomness comes only from numpy
Generators derived from ``settings.seed`` (one independent stream per judge and per procedure,
see `analyze_affinity`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from auditor.probes.base import ProbeContext, SharedArrays
from auditor.schemas.affinity import AffinityProbeResult
from auditor.schemas.bundle import (
    Bundle,
    ResponseMatrix,
    Verdict,
    _factorize,
    primary_view,
)
from auditor.schemas.columns import BundleColumns, bundle_sha256
from auditor.schemas.probe import ProbeFinding, ProbeResult, multiple_testing
from auditor.schemas.result import (
    AffinityReport,
    AnalysisSettings,
    Coverage,
    JudgeResult,
    ModelSummary,
    OLSFit,
    PairResult,
    PooledResult,
    Provenance,
)
from auditor.stats.correlation import (
    Method,
    correlation,
    partial_correlation,
    partial_r,
)
from auditor.stats.meta import fisher_combine
from auditor.stats.multitest import adjust_p_values
from auditor.stats.regression import ols
from auditor.stats.resampling import bootstrap_partial_r, permutation_p
from auditor.stats.similarity import SimilarityMatrix

if TYPE_CHECKING:  # pandas is loaded by `judgment_scores` alone (start-up time)
    import pandas as pd

__all__ = [
    "AFFINITY",
    "PROBE",
    "AffinityProbe",
    "affinity_findings",
    "analyze_affinity",
    "judgment_scores",
    "model_accuracies",
    "ols_fit",
    "pooled_estimate",
]

_OLS_TERMS = ("capa", "accuracy")
_N_COVARIATES = 1  # accuracy


# --- the statistics in the result schema ----------------------------------------------------------


def ols_fit(
    score: Sequence[float] | np.ndarray,
    capa: Sequence[float] | np.ndarray,
    accuracy: Sequence[float] | np.ndarray,
) -> OLSFit:
    """``score ~ const + capa + accuracy`` by `auditor.stats.regression.ols` (classical OLS:
    t p-values with n - 3 dof, as statsmodels OLS). Needs n >= 4.

    >>> score = [0.62, 0.71, 0.55, 0.80, 0.66, 0.74, 0.58, 0.69, 0.77, 0.60]
    >>> capa = [0.21, 0.37, 0.14, 0.49, 0.33, 0.40, 0.18, 0.29, 0.45, 0.26]
    >>> accuracy = [0.58, 0.69, 0.52, 0.77, 0.61, 0.70, 0.57, 0.68, 0.71, 0.63]
    >>> fit = ols_fit(score, capa, accuracy)
    >>> {k: round(v, 3) for k, v in fit.coefficients.items()}, round(fit.r_squared, 3)
    ({'intercept': 0.288, 'capa': 0.475, 'accuracy': 0.364}, 0.958)
    """
    fit = ols(score, dict(zip(_OLS_TERMS, (capa, accuracy), strict=True)), response="score")
    return OLSFit(**fit.as_dicts(), r_squared=fit.r_squared, n=fit.n)


def pooled_estimate(r: Sequence[float] | np.ndarray, n: Sequence[int] | np.ndarray) -> PooledResult:
    """The judges' partial r's pooled by `auditor.stats.meta.fisher_combine` (fixed effect,
    weights n - 3 - 1 for the one covariate), with the note the report prints.

    >>> pooled = pooled_estimate([0.35, 0.65, 0.5], [38, 38, 39])
    >>> round(pooled.r, 3), pooled.n_judges
    (0.51, 3)
    """
    pooled = fisher_combine(r, n, n_covariates=_N_COVARIATES)
    note = PooledResult.model_fields["note"].default
    if pooled.n_left_out:
        note += (
            f" {pooled.n_left_out} estimate(s) with n <= {3 + _N_COVARIATES} were left out "
            "(no weight)."
        )
    return PooledResult(
        n_judges=pooled.n_used, r=pooled.r, ci95=pooled.ci95, p_value=pooled.p_value, note=note
    )


# --- from the bundle to per-pair tables -----------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _VerdictColumns:
    """The verdicts as integer codes into name tables (each column factorized once)."""

    judge: np.ndarray  # int64 codes into `judges`
    candidate: np.ndarray  # int64 codes into `candidates`
    item: np.ndarray  # int64 codes into `items`
    value: np.ndarray  # int8: 1, 0, or -1 for null (invalid)
    judges: list[str]
    candidates: list[str]
    items: list[str]


def _codes(names: list[str]) -> tuple[np.ndarray, list[str]]:
    codes, uniques = _factorize(names)
    return codes, [str(name) for name in uniques]


def _verdict_columns(verdicts: Sequence[Verdict]) -> _VerdictColumns:
    # One pass per attribute over the records: list comprehensions are the fast way to read
    # pydantic objects; everything after this is vectorized.
    judge, judges = _codes([v.judge for v in verdicts])
    candidate, candidates = _codes([v.candidate for v in verdicts])
    item, items = _codes([v.item for v in verdicts])
    value = np.array([-1 if v.verdict is None else v.verdict for v in verdicts], dtype=np.int8)
    return _VerdictColumns(judge, candidate, item, value, judges, candidates, items)


_SCORE_COLUMNS = ("judge", "candidate", "n_one", "n_zero", "n_valid", "n_invalid", "score")


def _score_table(columns: _VerdictColumns) -> dict[str, np.ndarray]:
    """Per (judge, candidate) pair seen in the verdicts: the `_SCORE_COLUMNS` as arrays."""
    if columns.value.size == 0:
        return {name: np.zeros(0) for name in _SCORE_COLUMNS}
    n_candidates = len(columns.candidates)
    size = len(columns.judges) * n_candidates
    pair = columns.judge * n_candidates + columns.candidate
    value = columns.value
    n_one = np.bincount(pair[value == 1], minlength=size)
    n_zero = np.bincount(pair[value == 0], minlength=size)
    n_invalid = np.bincount(pair[value == -1], minlength=size)
    n_valid = n_one + n_zero
    seen = np.flatnonzero(n_valid + n_invalid > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where(n_valid > 0, n_one / n_valid, np.nan)
    return {
        "judge": np.array(columns.judges, dtype=object)[seen // n_candidates],
        "candidate": np.array(columns.candidates, dtype=object)[seen % n_candidates],
        "n_one": n_one[seen],
        "n_zero": n_zero[seen],
        "n_valid": n_valid[seen],
        "n_invalid": n_invalid[seen],
        "score": score[seen],
    }


def judgment_scores(verdicts: Sequence[Verdict]) -> pd.DataFrame:
    """Judgment score of every (judge, candidate) pair in ``verdicts``.

    Method (Goel et al. 2025): score = #"1" / (#"1" + #"0"). A null verdict (judge output that
    could not be parsed) is invalid: counted in ``n_invalid`` and excluded from the score; a
    pair with no valid verdict has score NaN. Vectorized (integer codes and ``np.bincount``):
    under a second for a million verdicts on two cores, mostly spent reading the records.

    Returns a DataFrame with columns judge, candidate, n_one, n_zero, n_valid, n_invalid, score,
    one row per pair in order of first appearance of the judge, then the candidate.

    Example (hand-worked: 2 of 3 valid verdicts are "1", one verdict is null):

    >>> vs = [Verdict(judge="j", candidate="c", item=str(i), verdict=v)
    ...       for i, v in enumerate([1, 0, None, 1])]
    >>> row = judgment_scores(vs).iloc[0]
    >>> int(row.n_valid), int(row.n_invalid), round(float(row.score), 3)
    (3, 1, 0.667)
    """
    import pandas as pd  # start-up time: only this notebook helper needs pandas

    return pd.DataFrame(_score_table(_verdict_columns(verdicts)), columns=list(_SCORE_COLUMNS))


def _check_verdicts(columns: _VerdictColumns, models: set[str], items: set[str]) -> None:
    """Cheap vectorized reference and duplicate checks (the loader checks more, record by
    record; this guards the statistics against bundles built in code)."""
    for name, seen, known in (
        ("judge", columns.judges, models),
        ("candidate", columns.candidates, models),
        ("item", columns.items, items),
    ):
        unknown = sorted(set(seen) - known)
        if unknown:
            raise ValueError(f"verdicts[*].{name}: unknown {name} {unknown[0]!r}")
    n = columns.value.size
    if n == 0:
        return
    n_candidates, n_items = len(columns.candidates), len(columns.items)
    key = (columns.judge * n_candidates + columns.candidate) * n_items + columns.item
    size = len(columns.judges) * n_candidates * n_items
    if size <= 4 * n:  # a dense count is cheaper than sorting
        counts = np.bincount(key, minlength=size)
        repeated = np.flatnonzero(counts > 1)
        at = int(np.flatnonzero(key == repeated[0])[0]) if repeated.size else -1
    else:
        _, first, counts = np.unique(key, return_index=True, return_counts=True)
        repeated = np.flatnonzero(counts > 1)
        at = int(first[repeated[0]]) if repeated.size else -1
    if at >= 0:
        raise ValueError(
            f"verdicts: duplicate verdict for judge={columns.judges[columns.judge[at]]!r}, "
            f"candidate={columns.candidates[columns.candidate[at]]!r}, "
            f"item={columns.items[columns.item[at]]!r}"
        )


def model_accuracies(responses: ResponseMatrix) -> np.ndarray:
    """Ground-truth MCQ accuracy of each model over the items it answered (NaN if none).

    The chosen option is the stated choice, else the argmax of the probabilities (ties to the
    lowest index), as held in ``ResponseMatrix.choice``.
    """
    correct = ((responses.choice == responses.gold[None, :]) & responses.present).sum(axis=1)
    answered = responses.present.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(answered > 0, correct / np.maximum(answered, 1), np.nan)


def _judge_generators(seed: int, judge: str) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent bootstrap and permutation Generators of one judge, from the seed and the
    judge's name only (so adding or removing a judge does not change another's numbers)."""
    key = int.from_bytes(hashlib.sha256(judge.encode("utf-8")).digest()[:8], "big")
    bootstrap, permutation = np.random.SeedSequence(seed, spawn_key=(key,)).spawn(2)
    return np.random.default_rng(bootstrap), np.random.default_rng(permutation)


# --- one judge ------------------------------------------------------------------------------------


@dataclass
class _JudgeOutcome:
    result: JudgeResult
    notes: list[str]


def _undefined_reason(
    score: np.ndarray, capa: np.ndarray, accuracy: np.ndarray, method: Method
) -> str | None:
    """Why the partial correlation of this judge's data is undefined, or None (for spearman,
    judged on the ranks, which is what is correlated)."""
    for name, values in (("judgment score", score), ("CAPA", capa), ("accuracy", accuracy)):
        if values.max() == values.min():
            return f"{name} is the same for every candidate; the partial correlation is undefined"
    if math.isnan(float(partial_r(score, capa, accuracy, method))):
        relation = "a monotone" if method == "spearman" else "a linear"
        return (
            f"judgment score or CAPA is {relation} function of accuracy across the candidates; "
            "the partial correlation is undefined"
        )
    return None


def _analyze_judge(
    judge: str,
    candidates: list[str],
    excluded: list[str],
    score: np.ndarray,
    capa: np.ndarray,
    accuracy: np.ndarray,
    settings: AnalysisSettings,
) -> _JudgeOutcome:
    n = len(candidates)

    def insufficient(reason: str) -> _JudgeOutcome:
        result = JudgeResult(
            judge=judge,
            status="insufficient_data",
            reason=reason,
            n_candidates=n,
            excluded_candidates=excluded,
        )
        return _JudgeOutcome(result, [])

    if n < settings.min_candidates:
        return insufficient(
            f"{n} usable candidate(s); at least {settings.min_candidates} needed "
            "(settings.min_candidates)"
        )
    undefined = _undefined_reason(score, capa, accuracy, settings.method)
    if undefined is not None:
        return insufficient(undefined)

    method = settings.method
    try:
        partial = partial_correlation(score, capa, accuracy, method)
    except ValueError as error:  # e.g. a covariate numerically identical to x or y
        return insufficient(f"the partial correlation could not be computed: {error}")
    notes: list[str] = []
    bootstrap_rng, permutation_rng = _judge_generators(settings.seed, judge)
    bootstrap = bootstrap_partial_r(
        score, capa, accuracy, settings.n_bootstrap, bootstrap_rng, method
    )
    permutation = permutation_p(
        score, capa, accuracy, settings.n_permutations, permutation_rng, method
    )
    if bootstrap.n_degenerate:
        notes.append(
            f"{judge}: {bootstrap.n_degenerate} of {bootstrap.n_resamples} bootstrap resamples "
            "were degenerate (constant or collinear) and were dropped"
        )
    if permutation.n_degenerate:
        notes.append(
            f"{judge}: {permutation.n_degenerate} of {permutation.n_permutations} permutations "
            "were degenerate and were dropped"
        )
    result = JudgeResult(
        status="ok",
        partial_r=partial.r,
        ci95=partial.ci95,
        p_value=partial.p_value,
        bootstrap_ci95=bootstrap.ci95,
        permutation_p=permutation.p_value,
        pearson_r=correlation(score, capa, method),
        ols=ols_fit(score, capa, accuracy),
        judge=judge,
        n_candidates=n,
        excluded_candidates=excluded,
    )
    return _JudgeOutcome(result, notes)


# --- the analysis ---------------------------------------------------------------------------------


def _check_settings(settings: Any) -> AnalysisSettings:
    if settings is None:
        return AnalysisSettings()
    if not isinstance(settings, AnalysisSettings):
        raise TypeError(f"settings: must be AnalysisSettings; got {type(settings).__name__}")
    if settings.seed < 0:
        raise ValueError(f"settings.seed: must be non-negative; got {settings.seed}")
    return settings


def _exclusion_reason(
    judge: str,
    candidate: str,
    families: dict[str, str | None],
    configured: set[tuple[str, str]],
    settings: AnalysisSettings,
) -> str | None:
    if candidate == judge:
        return "self-pair"
    family = families[judge]
    if settings.exclude_same_family and family is not None and family == families[candidate]:
        return f"same family as the judge ({family})"
    if (judge, candidate) in configured:
        return "excluded by configuration (settings.exclude_pairs)"
    return None


def analyze_affinity(
    bundle: Bundle | BundleColumns,
    settings: AnalysisSettings | None = None,
    *,
    provenance: dict[str, Any] | None = None,
    arrays: SharedArrays | None = None,
) -> AffinityReport:
    """Audit every judge in ``bundle`` for affinity bias (SCIENCE.md section 2).

    Judges are the models that appear as ``judge`` in the verdicts; a judge's candidates are the
    models it has verdicts on. For each (judge, candidate) pair: judgment score (null verdicts
    counted and excluded), CAPA (`auditor.stats.similarity.capa_matrix`: probabilistic where both
    models gave probabilities, else discrete) and the candidate's accuracy. A pair is left out
    of its judge's test, with its reason, when it is the self-pair, of the judge's family
    (``settings.exclude_same_family``; both families known), listed in
    ``settings.exclude_pairs``, or lacks a score, a CAPA or an accuracy.

    Per judge with at least ``settings.min_candidates`` usable candidates (else status
    ``insufficient_data`` with the reason, as also when a variable is constant or collinear):
    `auditor.stats.correlation.partial_correlation` (score, capa | accuracy, method; equal to
    pingouin.partial_corr) gives n, r, p and ``ci95``, its Fisher-z interval unrounded
    (k = 1); ``pearson_r`` is the raw correlation of
    score and CAPA (same method); ``ols`` is `ols_fit`; ``bootstrap_ci95`` is
    `bootstrap_partial_r` and ``permutation_p`` is `permutation_p` (Freedman-Lane). Holm and
    BH adjusted p-values are computed across the ``ok`` judges (`adjust_p_values`); a judge is
    flagged when the adjusted p named by ``settings.correction`` is below ``settings.alpha``
    and r exceeds ``settings.min_effect``. ``pooled`` is `pooled_estimate` over ``ok`` judges.

    Randomness: each judge's bootstrap and permutation Generators come from
    ``SeedSequence(settings.seed, spawn_key=(h,)).spawn(2)``, h = the first 8 bytes of
    SHA-256(judge name), big-endian. A judge's numbers thus depend only on the seed and its own
    data.

    ``provenance`` gives the `Provenance` fields (audit_id, spec, models, prompt_templates,
    created_at, software, ...) as the caller recorded them; ``input_sha256`` (`bundle_sha256`)
    is computed here and may not be passed. Pure: no clock, no installed versions.

    ``arrays`` holds the response and CAPA matrices the analysis shares with the other probes
    (`auditor.probes.base.SharedArrays`; computed here when not given).

    The bundle should come from `auditor.schemas.bundle.load_bundle`/`parse_bundle` (which validate
    every record); unknown names in verdicts and duplicate verdicts are checked again here and
    raise ValueError. Coverage states what was missing: invalid verdicts, discrete-only models,
    pairs without a valid verdict, degenerate resamples.
    """
    if not isinstance(bundle, Bundle | BundleColumns):
        raise TypeError(f"bundle: must be a Bundle or BundleColumns; got {type(bundle).__name__}")
    settings = _check_settings(settings)
    extra = dict(provenance or {})
    if "input_sha256" in extra:
        raise ValueError("provenance: 'input_sha256' is computed by analyze and cannot be given")

    model_names = [m.name for m in bundle.models]
    known_models = set(model_names)
    families = {m.name: m.family for m in bundle.models}
    for i, (judge, candidate) in enumerate(settings.exclude_pairs):
        for part, name in (("judge", judge), ("candidate", candidate)):
            if name not in known_models:
                raise ValueError(
                    f"settings.exclude_pairs[{i}]: unknown {part} {name!r} (not in bundle.models)"
                )
    configured = {(j, c) for j, c in settings.exclude_pairs}

    # Verdicts under judge template variants feed prompt stability, not the affinity test.
    if isinstance(bundle, Bundle):
        columns = _verdict_columns(primary_view(bundle).verdicts)
    else:
        primary = bundle.primary_verdicts()
        columns = _VerdictColumns(
            judge=bundle.verdict_judge[primary],
            candidate=bundle.verdict_candidate[primary],
            item=bundle.verdict_item[primary],
            value=bundle.verdict_value[primary],
            judges=model_names,
            candidates=model_names,
            items=[item.id for item in bundle.items],
        )
    _check_verdicts(columns, known_models, {item.id for item in bundle.items})
    table = _score_table(columns)
    by_pair = {
        (j, c): (int(nv), int(ni), float(s))
        for j, c, nv, ni, s in zip(
            table["judge"],
            table["candidate"],
            table["n_valid"],
            table["n_invalid"],
            table["score"],
            strict=True,
        )
    }
    judge_set, candidate_set = set(table["judge"]), set(table["candidate"])
    judges = [name for name in model_names if name in judge_set]

    arrays = SharedArrays(bundle) if arrays is None else arrays
    responses = arrays.responses(model_names)
    accuracy = model_accuracies(responses)
    similarity: SimilarityMatrix = arrays.capa(model_names)
    row = {name: i for i, name in enumerate(model_names)}

    pairs: list[PairResult] = []
    outcomes: list[_JudgeOutcome] = []
    for judge in judges:
        used: list[str] = []
        excluded: list[str] = []
        data: list[tuple[float, float, float]] = []
        for candidate in model_names:
            if (judge, candidate) not in by_pair:
                continue
            n_valid, n_invalid, score = by_pair[(judge, candidate)]
            capa = similarity.pair(judge, candidate)
            candidate_accuracy = float(accuracy[row[candidate]])
            reason = _exclusion_reason(judge, candidate, families, configured, settings)
            if reason is None and n_valid == 0:
                reason = f"no valid verdict ({n_invalid} invalid)"
            if reason is None and capa.value is None:
                reason = f"CAPA undefined: {capa.undefined_reason}"
            if reason is None and math.isnan(candidate_accuracy):
                reason = "candidate accuracy undefined: it answered no item"
            pairs.append(
                PairResult(
                    judge=judge,
                    candidate=candidate,
                    capa=capa.value,
                    capa_kind=capa.kind,
                    capa_undefined_reason=capa.undefined_reason,
                    judgment_score=None if n_valid == 0 else score,
                    accuracy=None if math.isnan(candidate_accuracy) else candidate_accuracy,
                    n_valid=n_valid,
                    n_invalid=n_invalid,
                    excluded=reason is not None,
                    exclusion_reason=reason,
                )
            )
            if reason is None and capa.value is not None:
                used.append(candidate)
                data.append((score, capa.value, candidate_accuracy))
            else:
                excluded.append(candidate)
        values = np.array(data, dtype=np.float64).reshape(-1, 3)
        outcomes.append(
            _analyze_judge(
                judge, used, excluded, values[:, 0], values[:, 1], values[:, 2], settings
            )
        )

    judge_results = _with_adjusted_p(outcomes, settings)
    family = multiple_testing(
        settings.correction,
        settings.alpha,
        "judges",
        ["affinity"],
        sum(1 for r in judge_results if r.p_adjusted is not None),
    )
    judge_results = [
        r.model_copy(update={"correction": family.label}) if r.p_adjusted is not None else r
        for r in judge_results
    ]
    ok = [result for result in judge_results if result.status == "ok"]
    pooled = pooled_estimate(
        [result.partial_r for result in ok if result.partial_r is not None],
        [result.n_candidates for result in ok if result.partial_r is not None],
    )
    notes = [note for outcome in outcomes for note in outcome.notes]
    return AffinityReport(
        settings=settings,
        judges=judge_results,
        pairs=pairs,
        pooled=pooled,
        models=_model_summaries(bundle, responses, accuracy, judge_set, candidate_set),
        coverage=_coverage(bundle, responses, columns, judges, candidate_set, by_pair, notes),
        provenance=Provenance(
            input_sha256=bundle_sha256(bundle),
            **extra,
        ),
        multiple_testing=family,
    )


def _with_adjusted_p(
    outcomes: list[_JudgeOutcome], settings: AnalysisSettings
) -> list[JudgeResult]:
    results = [outcome.result for outcome in outcomes]
    tested = [
        (i, result.p_value)
        for i, result in enumerate(results)
        if result.status == "ok" and result.p_value is not None
    ]
    adjusted = adjust_p_values([p for _, p in tested])
    for position, (i, _) in enumerate(tested):
        result = results[i]
        holm = float(adjusted["holm"][position])
        bh = float(adjusted["fdr_bh"][position])
        chosen = holm if settings.correction == "holm" else bh
        effect = result.partial_r
        results[i] = result.model_copy(
            update={
                "p_holm": holm,
                "p_fdr_bh": bh,
                "p_adjusted": chosen,
                "flagged": effect is not None
                and chosen < settings.alpha
                and effect > settings.min_effect,
            }
        )
    return results


def _model_summaries(
    bundle: Bundle | BundleColumns,
    responses: ResponseMatrix,
    accuracy: np.ndarray,
    judges: set[str],
    candidates: set[str],
) -> list[ModelSummary]:
    answered = responses.present.sum(axis=1)
    return [
        ModelSummary(
            name=model.name,
            provider=model.provider,
            family=model.family,
            accuracy=None if math.isnan(accuracy[i]) else float(accuracy[i]),
            n_items=int(answered[i]),
            probabilistic=bool(responses.probabilistic[i]),
            is_judge=model.name in judges,
            is_candidate=model.name in candidates,
        )
        for i, model in enumerate(bundle.models)
    ]


def _coverage(
    bundle: Bundle | BundleColumns,
    responses: ResponseMatrix,
    columns: _VerdictColumns,
    judges: list[str],
    candidates: set[str],
    by_pair: dict[tuple[str, str], tuple[int, int, float]],
    notes: list[str],
) -> Coverage:
    answered = [bool(v) for v in np.any(responses.present, axis=1).tolist()]
    probabilistic_rows = [bool(v) for v in responses.probabilistic]
    names = responses.models
    silent = [name for name, any_output in zip(names, answered, strict=True) if not any_output]
    discrete = [
        name
        for name, any_output, probabilistic in zip(names, answered, probabilistic_rows, strict=True)
        if any_output and not probabilistic
    ]
    # Every judge against every model that any judge judged (self-pairs aside): a pair with no
    # valid verdict is either never asked or only answered unparseably.
    without = sum(
        1
        for judge in judges
        for candidate in candidates
        if candidate != judge and by_pair.get((judge, candidate), (0, 0, 0.0))[0] == 0
    )
    all_notes = []
    if silent:
        all_notes.append(
            f"{len(silent)} model(s) answered no item, so their accuracy and CAPA are undefined: "
            + ", ".join(silent)
        )
    if without:
        all_notes.append(
            f"{without} (judge, candidate) pair(s) have no valid verdict, counted over every judge "
            "and every model judged by any judge (self-pairs aside)"
        )
    invalid = np.bincount(columns.judge[columns.value == -1], minlength=len(columns.judges))
    invalid_by_judge = dict(zip(columns.judges, invalid.tolist(), strict=True))
    for judge in judges:
        count = int(invalid_by_judge.get(judge, 0))
        if count:
            all_notes.append(f"{judge}: {count} invalid (null) verdict(s) excluded from scores")
    all_notes.extend(notes)
    return Coverage(
        n_items=len(bundle.items),
        n_outputs=len(bundle.outputs) if isinstance(bundle, Bundle) else bundle.n_outputs,
        n_verdicts=columns.value.size,
        n_invalid_verdicts=int(np.count_nonzero(columns.value == -1)),
        discrete_only_models=discrete,
        pairs_without_verdicts=without,
        notes=all_notes,
    )


# --- the probe in the registry ----------------------------------------------------------------


def affinity_findings(report: AffinityReport) -> AffinityProbeResult:
    """The affinity probe's result from an affinity analysis: one finding per judge, its partial
    r with CI and unadjusted p. ``flagged`` is the probe's side of the rule (p < alpha and
    partial r > min_effect, the biased direction); the analysis adjusts p across judges x probes
    (``p_adjusted``) and keeps the flag only where that adjusted p < alpha too, then gives the
    judges of the affinity section the same adjusted p and flag."""
    settings = report.settings
    findings = [
        ProbeFinding(
            judge=judge.judge,
            status=judge.status,
            reason=judge.reason,
            n=judge.n_candidates,
            estimate=judge.partial_r,
            ci95=judge.ci95,
            p_value=judge.p_value,
            flagged=judge.p_value is not None
            and judge.partial_r is not None
            and judge.p_value < settings.alpha
            and judge.partial_r > settings.min_effect,
        )
        for judge in report.judges
    ]
    ok = any(f.status == "ok" for f in findings)
    return AffinityProbeResult(
        status="ok" if ok else "insufficient_data",
        reason=None if ok else "no judge has enough candidates with verdicts, CAPA and accuracy",
        findings=findings,
    )


class AffinityProbe:
    """Registry entry: affinity bias (Goel et al. 2025), from the verdicts an audit collects.

    Its details are the audit result's top-level fields (judges, pairs, pooled, models,
    coverage): `auditor.probes.analysis.analyze` computes them once with `analyze_affinity` and
    takes the findings from them (`affinity_findings`); `compute` does the same on its own.
    """

    name: ClassVar[str] = "affinity"
    title: ClassVar[str] = "Affinity bias (CAPA)"
    result_model: ClassVar[type[ProbeResult]] = AffinityProbeResult

    def missing_inputs(self, bundle: Bundle | BundleColumns) -> str | None:
        if not bundle.n_verdicts:
            return "no verdicts"
        if not bundle.n_outputs:
            return "no multiple-choice outputs"
        return None

    def plan(self, spec: Any, base: Bundle, answers: Any) -> Sequence[Any]:
        """The affinity calls (MCQ, free-form answers, judge verdicts) are planned by
        `auditor.services.planning`, which every audit runs; nothing beyond them."""
        return ()

    def compute(self, context: ProbeContext) -> AffinityProbeResult:
        return affinity_findings(
            analyze_affinity(context.source, context.settings, arrays=context.arrays)
        )


AFFINITY = PROBE = AffinityProbe()
