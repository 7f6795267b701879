"""The correlated-errors probe: Kim et al. (2025, ICML, "Correlated Errors in Large Language
Models") run on one bundle.

From the models' multiple-choice outputs: the both-wrong error agreement of every pair
(`auditor.stats.similarity.error_agreement`, matrix products), the pair regression of agreement on
same provider / same family / accuracy (`auditor.stats.pair_regression`), systemic exclusion of
the models over the items with the greedy most and least correlated subsets
(`auditor.stats.monoculture`), and mean CAPA within accuracy bins (Goel et al. 2025, Fig. 6).
From the judges' verdicts, when there are any: each judge's inflation of same-provider
candidates (`auditor.stats.inflation`), the panel's systemic rejection of candidate answers, and
its effective number of independent judges.

Nothing here calls a model: the probe reads what an affinity audit already collects.
Missing inputs give an ``insufficient_data`` part naming what is missing, never a traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from auditor.probes.base import ProbeContext, SharedArrays
from auditor.schemas.bundle import Bundle, ResponseMatrix
from auditor.schemas.columns import BundleColumns, bundle_columns
from auditor.schemas.correlated_errors import (
    AgreementMatrix,
    CapabilityBin,
    CorrelatedErrorsResult,
    CorrelatedErrorsSettings,
    EffectiveJudgesResult,
    InflationCandidate,
    InflationFinding,
    JudgeInflationResult,
    MonocultureResult,
    PairRegressionResult,
    RegressionTerm,
    SubsetPoint,
)
from auditor.schemas.probe import ProbeResult, ProbeStatus
from auditor.stats.inflation import judge_inflation
from auditor.stats.monoculture import (
    effective_judges,
    greedy_subsets,
    joint_failure,
    similarity_by_accuracy_bin,
)
from auditor.stats.pair_regression import pair_design, pair_regression
from auditor.stats.similarity import SimilarityMatrix, error_agreement

__all__ = ["CORRELATED_ERRORS", "PROBE", "CorrelatedErrorsProbe", "analyze_correlated_errors"]

MIN_MODELS = 3


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _finite_or_none_rows(values: np.ndarray) -> list[list[float | None]]:
    """`_finite_or_none` of every entry of a matrix, row by row (one pass in numpy: the
    agreement matrix of 1,000 models has a million entries)."""
    entries = values.astype(object)
    entries[~np.isfinite(values)] = None
    return entries.tolist()


def _holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (Holm 1979)."""
    p = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p)
    m = p.size
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    result = np.empty(m)
    result[order] = np.minimum(adjusted, 1.0)
    return result.tolist()


def _accuracy(responses: ResponseMatrix) -> np.ndarray:
    correct = ((responses.choice == responses.gold[None, :]) & responses.present).sum(axis=1)
    answered = responses.present.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(answered > 0, correct / np.maximum(answered, 1), np.nan)


def _wrong(responses: ResponseMatrix) -> np.ndarray:
    return responses.present & (responses.choice != responses.gold[None, :])


# --- parts from the multiple-choice outputs ------------------------------------------------------


def _agreement(
    responses: ResponseMatrix, providers: list[str | None], families: list[str | None]
) -> tuple[AgreementMatrix, np.ndarray]:
    values = error_agreement(responses).values.copy()
    np.fill_diagonal(values, np.nan)
    wrong = _wrong(responses).astype(np.float32)
    both_wrong = np.rint(wrong @ wrong.T).astype(np.int64)
    upper = values[np.triu_indices(values.shape[0], k=1)]
    upper = upper[np.isfinite(upper)]
    chance = float(np.mean(1.0 / (responses.option_counts - 1.0)))
    accuracy = _accuracy(responses)
    return (
        AgreementMatrix(
            models=list(responses.models),
            providers=providers,
            families=families,
            accuracy=[_finite_or_none(a) for a in accuracy],
            matrix=_finite_or_none_rows(values),
            n_both_wrong=both_wrong.tolist(),
            mean_agreement=float(upper.mean()) if upper.size else None,
            chance_level=chance,
        ),
        values,
    )


def _regression(
    values: np.ndarray,
    responses: ResponseMatrix,
    providers: list[str | None],
    families: list[str | None],
    params: list[float | None],
    settings: CorrelatedErrorsSettings,
) -> PairRegressionResult:
    clustering = f"{settings.clustering} by the two models of each pair"
    if not any(providers):
        return PairRegressionResult(
            status="insufficient_data",
            reason="no model has a provider in the bundle's model metadata",
            n_pairs=0,
            n_excluded=0,
            clustering=clustering,
        )
    design = pair_design(
        values, responses.models, _accuracy(responses), providers, families, params
    )
    base: dict[str, Any] = {
        "n_pairs": int(design.agreement.size),
        "n_excluded": design.n_excluded_no_both_wrong,
        "excluded_models": design.excluded_models,
        "dropped_terms": design.dropped_terms,
        "clustering": clustering,
    }
    n_terms = len(design.terms)
    kept_models = np.unique(np.concatenate([design.first, design.second]))
    if design.agreement.size <= n_terms or kept_models.size < MIN_MODELS:
        return PairRegressionResult(
            status="insufficient_data",
            reason=f"{design.agreement.size} pairs with a both-wrong item among "
            f"{kept_models.size} models with known metadata; the regression needs more pairs "
            f"than its {n_terms} terms and at least {MIN_MODELS} models",
            **base,
        )
    try:
        fit = pair_regression(
            design, clustering=settings.clustering, use_t=settings.use_t, alpha=settings.alpha
        ).fit
    except ValueError as error:
        return PairRegressionResult(status="insufficient_data", reason=str(error), **base)
    inference = f"t({fit.df})" if fit.df is not None else "normal"
    return PairRegressionResult(
        formula=design.formula,
        inference=inference,
        n_clusters=min(fit.n_clusters),
        psd_adjusted=fit.psd_adjusted,
        r_squared=fit.r_squared,
        terms={
            term: RegressionTerm(
                coef=float(fit.coef[i]),
                se=float(fit.se[i]),
                ci95=(float(fit.ci_low[i]), float(fit.ci_high[i])),
                p=float(fit.p[i]),
            )
            for i, term in enumerate(fit.terms)
        },
        **base,
    )


def _subset_points(
    fail: np.ndarray, names: Sequence[str], most: bool, max_k: int
) -> list[SubsetPoint]:
    return [
        SubsetPoint(
            k=step.k,
            members=[names[m] for m in step.members],
            observed=step.observed,
            baseline=step.baseline,
            ratio=step.ratio,
        )
        for step in greedy_subsets(fail, most=most, max_k=max_k)
    ]


def _monoculture(
    fail: np.ndarray,
    names: Sequence[str],
    scope: str,
    settings: CorrelatedErrorsSettings,
    rng: np.random.Generator,
) -> MonocultureResult:
    if fail.shape[0] < 2 or fail.shape[1] == 0:
        return MonocultureResult(
            status="insufficient_data",
            reason=f"needs at least 2 members and 1 shared unit; got {fail.shape[0]} members and "
            f"{fail.shape[1]} units",
            scope=scope,
            members=list(names),
        )
    joint = joint_failure(fail, rng, n_bootstrap=settings.n_bootstrap, alpha=settings.alpha)
    return MonocultureResult(
        scope=scope,
        members=list(names),
        n_units=joint.n_units,
        n_all_fail=joint.n_all_fail,
        observed=joint.observed,
        baseline=joint.baseline,
        ratio=joint.ratio,
        ratio_ci95=joint.ci95,
        most_correlated=_subset_points(fail, names, True, settings.max_panel_size),
        least_correlated=_subset_points(fail, names, False, settings.max_panel_size),
    )


def _capability_bins(
    responses: ResponseMatrix, similarity: SimilarityMatrix, settings: CorrelatedErrorsSettings
) -> list[CapabilityBin]:
    capa = similarity.values.copy()
    np.fill_diagonal(capa, np.nan)
    bins = similarity_by_accuracy_bin(capa, _accuracy(responses), n_bins=settings.n_accuracy_bins)
    return [
        CapabilityBin(
            low=b.low,
            high=b.high,
            n_models=b.n_models,
            n_pairs=b.n_pairs,
            mean_capa=b.mean_similarity,
        )
        for b in bins
    ]


# --- parts from the verdicts ---------------------------------------------------------------------


class _VerdictCube:
    """Valid primary verdicts as a (judge, candidate, item) array: 1, 0, or -1 (none/invalid).

    Judges and candidates are the models with MCQ outputs that appear in the verdicts (a
    candidate id that is not such a model, e.g. a battery variant, is left out)."""

    def __init__(self, columns: BundleColumns, responses: ResponseMatrix) -> None:
        names = [m.name for m in columns.models]
        row_of_model = np.full(len(names), -1, dtype=np.int64)
        for row, name in enumerate(responses.models):
            row_of_model[names.index(name)] = row
        keep = columns.primary_verdicts() & (columns.verdict_value >= 0)
        judge_rows = row_of_model[columns.verdict_judge]
        candidate_rows = row_of_model[columns.verdict_candidate]
        keep &= (judge_rows >= 0) & (candidate_rows >= 0)
        judge_used = np.unique(judge_rows[keep])
        candidate_used = np.unique(candidate_rows[keep])
        self.judges = [responses.models[r] for r in judge_used]
        self.candidates = [responses.models[r] for r in candidate_used]
        judge_index = np.full(len(responses.models), -1, dtype=np.int64)
        judge_index[judge_used] = np.arange(judge_used.size)
        candidate_index = np.full(len(responses.models), -1, dtype=np.int64)
        candidate_index[candidate_used] = np.arange(candidate_used.size)
        self.values = np.full(
            (len(self.judges), len(self.candidates), len(responses.items)), -1, dtype=np.int8
        )
        self.values[
            judge_index[judge_rows[keep]],
            candidate_index[candidate_rows[keep]],
            columns.verdict_item[keep],
        ] = columns.verdict_value[keep]

    def scores(self) -> np.ndarray:
        """(judges, candidates) share of valid verdicts that are 1; NaN with none."""
        valid = (self.values >= 0).sum(axis=2)
        ones = (self.values == 1).sum(axis=2)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(valid > 0, ones / np.maximum(valid, 1), np.nan)


def _inflation(
    cube: _VerdictCube,
    responses: ResponseMatrix,
    provider_of: dict[str, str | None],
    settings: CorrelatedErrorsSettings,
    rng: np.random.Generator,
) -> list[JudgeInflationResult]:
    scores = cube.scores()
    accuracy = dict(zip(responses.models, _accuracy(responses), strict=True))
    results = []
    for j, judge in enumerate(cube.judges):
        provider = provider_of.get(judge)
        if not provider:
            results.append(
                JudgeInflationResult(
                    judge=judge,
                    provider=None,
                    status="insufficient_data",
                    reason="the judge's provider is unknown",
                )
            )
            continue
        rows = [
            (candidate, scores[j, c], accuracy[candidate], provider_of.get(candidate))
            for c, candidate in enumerate(cube.candidates)
            if candidate != judge
            and np.isfinite(scores[j, c])
            and np.isfinite(accuracy[candidate])
            and provider_of.get(candidate)
        ]
        if not rows:
            results.append(
                JudgeInflationResult(
                    judge=judge,
                    provider=provider,
                    status="insufficient_data",
                    reason="no candidate with a score, an accuracy and a known provider",
                )
            )
            continue
        score = np.array([r[1] for r in rows])
        acc = np.array([r[2] for r in rows])
        same = np.array([r[3] == provider for r in rows])
        stats = judge_inflation(
            score,
            acc,
            same,
            rng,
            n_bootstrap=settings.n_bootstrap,
            n_permutations=settings.n_permutations,
            alpha=settings.alpha,
        )
        results.append(
            JudgeInflationResult(
                judge=judge,
                provider=provider,
                status="ok" if stats.reason is None else "insufficient_data",
                reason=stats.reason,
                n_same=stats.n_same,
                n_other=stats.n_other,
                mean_same=stats.mean_same,
                mean_other=stats.mean_other,
                difference=stats.difference,
                ci95=stats.ci95,
                p_value=stats.p_value,
                interaction=stats.interaction,
                interaction_se=stats.interaction_se,
                interaction_p=stats.interaction_p,
                candidates=[
                    InflationCandidate(
                        candidate=r[0],
                        provider=r[3],
                        same_provider=bool(s),
                        score=float(r[1]),
                        accuracy=float(r[2]),
                        inflation=float(r[1] - r[2]),
                    )
                    for r, s in zip(rows, same, strict=True)
                ],
            )
        )
    return results


def _findings(
    inflation: list[JudgeInflationResult], alpha: float, adjust: bool
) -> list[InflationFinding]:
    """One finding per judge. With ``adjust`` (the stand-alone analysis), p is Holm-adjusted
    across the judges here and a judge is flagged when that p < alpha and the difference is
    positive; without (inside an audit), p_adjusted is left to the analysis, which adjusts
    across all judges x probes and keeps a flag only where that adjusted p < alpha."""
    tested = [(r.judge, r.p_value) for r in inflation if r.p_value is not None]
    adjusted: dict[str, float] = (
        dict(zip([j for j, _ in tested], _holm([p for _, p in tested]), strict=True))
        if tested and adjust
        else {}
    )
    findings = []
    for r in inflation:
        p_adj = adjusted.get(r.judge)
        p_flag = p_adj if adjust else r.p_value
        findings.append(
            InflationFinding(
                judge=r.judge,
                status=r.status,
                reason=r.reason,
                n=r.n_same + r.n_other,
                estimate=r.difference,
                ci95=r.ci95,
                p_value=r.p_value,
                p_adjusted=p_adj,
                flagged=bool(p_flag is not None and p_flag < alpha and (r.difference or 0) > 0),
                provider=r.provider,
                mean_same=r.mean_same,
                mean_other=r.mean_other,
            )
        )
    return findings


def _panel_failures(
    cube: _VerdictCube, responses: ResponseMatrix
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rejections and errors of the judges on the candidate answers every judge graded.

    Returns (rejected, wrong, item_of_unit): (judges, units) booleans and each unit's item.
    A verdict is an error when it differs from the truth of the answer (the candidate's
    multiple-choice answer on that item is the gold option)."""
    graded = (cube.values >= 0).all(axis=0)  # (candidates, items)
    rows = np.array([responses.index(c) for c in cube.candidates], dtype=np.int64)
    present = responses.present[rows]
    graded &= present
    candidate_idx, item_idx = np.nonzero(graded)
    verdicts = cube.values[:, candidate_idx, item_idx]
    truth = responses.choice[rows[candidate_idx], item_idx] == responses.gold[item_idx]
    return verdicts == 0, verdicts != truth[None, :].astype(np.int8), item_idx


def _effective(
    wrong: np.ndarray,
    items: np.ndarray,
    judges: list[str],
    settings: CorrelatedErrorsSettings,
    rng: np.random.Generator,
) -> EffectiveJudgesResult:
    if len(judges) < 2 or wrong.shape[1] < 3:
        return EffectiveJudgesResult(
            status="insufficient_data",
            reason=f"needs at least 2 judges grading common answers; got {len(judges)} judges "
            f"and {wrong.shape[1]} commonly graded answers",
            judges=judges,
            n_units=int(wrong.shape[1]),
        )
    try:
        result = effective_judges(
            wrong, rng, clusters=items, n_bootstrap=settings.n_bootstrap, alpha=settings.alpha
        )
    except ValueError as error:
        return EffectiveJudgesResult(
            status="insufficient_data",
            reason=str(error),
            judges=judges,
            n_units=int(wrong.shape[1]),
        )
    excluded = set(result.excluded)
    return EffectiveJudgesResult(
        judges=[j for i, j in enumerate(judges) if i not in excluded],
        n_units=result.n_units,
        n_eff=result.n_eff,
        ci95=result.ci95,
        eigenvalues=list(result.eigenvalues),
        excluded=[judges[i] for i in sorted(excluded)],
    )


# --- the whole analysis --------------------------------------------------------------------------


def _answering_models(columns: BundleColumns) -> list[str]:
    answered = np.unique(columns.output_model[columns.primary_outputs()])
    return [columns.models[k].name for k in answered]


def analyze_correlated_errors(
    bundle: Bundle | BundleColumns,
    settings: CorrelatedErrorsSettings | None = None,
    *,
    adjust_across_judges: bool = True,
    arrays: SharedArrays | None = None,
) -> CorrelatedErrorsResult:
    """Every part of the correlated-errors analysis of a validated bundle (pure, seeded).

    Reads the outputs and verdicts under the primary templates
    (`auditor.schemas.bundle.primary_view`). ``arrays`` holds the response and CAPA matrices
    the analysis shares with the other probes (`auditor.probes.base.SharedArrays`; computed
    here when not given).
    """
    settings = settings or CorrelatedErrorsSettings()
    rng = np.random.default_rng([settings.seed, 0x6B696D])  # the probe's own stream
    columns = bundle if isinstance(bundle, BundleColumns) else bundle_columns(bundle)
    names = _answering_models(columns)
    missing: list[str] = []
    if len(names) < MIN_MODELS:
        return CorrelatedErrorsResult(
            status="insufficient_data",
            reason=f"needs multiple-choice outputs of at least {MIN_MODELS} models; the bundle "
            f"has outputs of {len(names)}",
            settings=settings,
            missing=[f"outputs of at least {MIN_MODELS} models"],
        )
    info = {m.name: m for m in columns.models}
    providers = [info[n].provider for n in names]
    families = [info[n].family for n in names]
    params = [info[n].params for n in names]
    arrays = SharedArrays(columns) if arrays is None else arrays
    responses = arrays.responses(names)
    agreement, values = _agreement(responses, providers, families)
    if not any(providers):
        missing.append(
            "provider metadata (models[].provider) for the pair regression and judge inflation"
        )
    if not np.isfinite(values).any():
        missing.append(
            "an item that two models both got wrong (error agreement is undefined for every pair)"
        )
        regression = PairRegressionResult(
            status="insufficient_data",
            reason=missing[-1],
            n_pairs=0,
            n_excluded=len(names) * (len(names) - 1) // 2,
            clustering=f"{settings.clustering} by the two models of each pair",
        )
    else:
        regression = _regression(values, responses, providers, families, params, settings)
    shared = responses.present.all(axis=0)
    monoculture = _monoculture(
        _wrong(responses)[:, shared], names, "models answering items wrong", settings, rng
    )
    capability = _capability_bins(responses, arrays.capa(names), settings)

    inflation = judge_monoculture = effective = None
    findings: list[InflationFinding] = []
    cube = _VerdictCube(columns, responses) if columns.n_verdicts else None
    if cube is not None and cube.judges:
        provider_of = dict(zip(names, providers, strict=True))
        inflation = _inflation(cube, responses, provider_of, settings, rng)
        findings = _findings(inflation, settings.alpha, adjust_across_judges)
        rejected, wrong, items = _panel_failures(cube, responses)
        judge_monoculture = _monoculture(
            rejected, cube.judges, "judges rejecting candidate answers", settings, rng
        )
        effective = _effective(wrong, items, cube.judges, settings, rng)
    else:
        missing.append("verdicts (judge inflation, panel monoculture, effective judges)")
    status: ProbeStatus = "ok" if regression.status == "ok" else "insufficient_data"
    return CorrelatedErrorsResult(
        status=status,
        reason=None if status == "ok" else f"pair regression: {regression.reason}",
        settings=settings,
        missing=missing,
        agreement=agreement,
        regression=regression,
        monoculture=monoculture,
        judge_monoculture=judge_monoculture,
        effective_judges=effective,
        inflation=inflation,
        similarity_by_capability=capability,
        findings=findings,
    )


class CorrelatedErrorsProbe:
    """Registry entry: Kim et al. (2025) correlated errors, judge inflation, monoculture."""

    name: ClassVar[str] = "correlated_errors"
    title: ClassVar[str] = "Correlated errors, judge inflation and monoculture"
    result_model: ClassVar[type[ProbeResult]] = CorrelatedErrorsResult

    def missing_inputs(self, bundle: Bundle | BundleColumns) -> str | None:
        columns = bundle if isinstance(bundle, BundleColumns) else bundle_columns(bundle)
        if len(_answering_models(columns)) < MIN_MODELS:
            return f"fewer than {MIN_MODELS} models with multiple-choice outputs"
        return None

    def plan(self, spec: Any, base: Bundle, answers: Any) -> Sequence[Any]:
        """No model calls of its own: it reads the outputs and verdicts an audit collects."""
        return ()

    def compute(self, context: ProbeContext) -> CorrelatedErrorsResult:
        settings = getattr(context.settings, "correlated_errors", None)
        if not isinstance(settings, CorrelatedErrorsSettings):
            alpha = getattr(context.settings, "alpha", 0.05)
            seed = getattr(context.settings, "seed", 0)
            settings = CorrelatedErrorsSettings(alpha=alpha, seed=seed)
        # The audit's analysis adjusts p across all judges x probes (`p_adjusted`, flags).
        source = context.bundle if context.columns is None else context.columns
        return analyze_correlated_errors(
            source, settings, adjust_across_judges=False, arrays=context.arrays
        )


CORRELATED_ERRORS = PROBE = CorrelatedErrorsProbe()
