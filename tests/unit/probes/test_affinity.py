"""Tests of `auditor.probes.affinity`, the affinity-bias analysis of SCIENCE.md section 2.

Every statistical test names its reference: pingouin (an independent implementation of the
partial correlation), numpy least squares, statsmodels, a hand-worked example, or a simulation
with planted truth (`auditor.ecosystem`). The statistics themselves are tested against their
references in tests/unit/stats/ (correlation, resampling, regression, meta, multitest).
"""

from __future__ import annotations

import doctest
import hashlib
import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from pydantic import TypeAdapter
from scipy import stats

import auditor.probes.affinity as affinity
from auditor.ecosystem import Ecosystem, EcosystemConfig, FamilyConfig, _stable_uniform
from auditor.probes.affinity import (
    analyze_affinity,
    judgment_scores,
    ols_fit,
    pooled_estimate,
)
from auditor.schemas.bundle import Bundle, Item, ModelInfo, Output, Verdict
from auditor.schemas.columns import bundle_sha256
from auditor.schemas.result import AffinityReport, AnalysisSettings
from auditor.stats.meta import fisher_combine
from auditor.stats.multitest import adjust_p_values
from tests.support.stats import correlated_data, p_column, pingouin_row

# --- helpers -------------------------------------------------------------------------------------


_VERDICTS = TypeAdapter(list[Verdict])


def planted_bundle(eco: Ecosystem) -> Bundle:
    """`Ecosystem.bundle()`, faster: the same verdict rule (`Ecosystem.verdict`, i.e.
    accept_probability(option_in_text(answer)) against _stable_uniform(seed, judge, item,
    answer)) with the per-item acceptance probabilities computed once per judge, item and option
    instead of once per verdict. `test_planted_bundle_equals_ecosystem_bundle` pins equality."""
    base = eco.bundle(with_verdicts=False)
    seed = eco.config.seed
    items = [item.id for item in eco.items]
    texts = {c: [eco.answer_text(c, item) for item in items] for c in eco.model_names}
    named = {
        c: [eco.option_in_text(item, text) for item, text in zip(items, texts[c], strict=True)]
        for c in eco.model_names
    }
    records = []
    for judge in eco.judge_names:
        accept: dict[tuple[str, int | None], float] = {}
        for candidate in eco.model_names:
            for item, text, option in zip(items, texts[candidate], named[candidate], strict=True):
                key = (item, option)
                if key not in accept:
                    accept[key] = eco.accept_probability(judge, item, option)
                verdict = int(_stable_uniform(seed, judge, item, text) < accept[key])
                records.append(
                    {"judge": judge, "candidate": candidate, "item": item, "verdict": verdict}
                )
    return Bundle(
        items=base.items, models=base.models, outputs=base.outputs, verdicts=[]
    ).model_copy(update={"verdicts": _VERDICTS.validate_python(records)})


FAMILIES = ("atlas", "boreal", "cygnus", "draco")


def ecosystem(
    seed: int,
    strength: float,
    *,
    size: int,
    n_items: int,
    judges: list[str],
    **extra: float,
) -> Ecosystem:
    return Ecosystem(
        EcosystemConfig(
            seed=seed,
            n_items=n_items,
            families=[FamilyConfig(name=name, size=size) for name in FAMILIES],
            ability_range=(-1.0, 2.0),
            judges=judges,
            affinity_strength=strength,
            **extra,
        )
    )


FAST = AnalysisSettings(n_bootstrap=200, n_permutations=200, seed=11)


@pytest.fixture(scope="module")
def small_world() -> Bundle:
    """4 families x 4 models, 60 items, two judges, planted affinity 0.5."""
    eco = ecosystem(5, 0.5, size=4, n_items=60, judges=["atlas-2", "cygnus-3"])
    return planted_bundle(eco)


# --- the public surface --------------------------------------------------------------------------


def test_public_api_is_pinned() -> None:
    assert sorted(affinity.__all__) == sorted(
        [
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
    )


def test_docstring_examples_run() -> None:
    """The rounded examples in the docstrings are true (doctest)."""
    result = doctest.testmod(affinity, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 8
    assert result.failed == 0


def test_import_does_not_load_heavy_statistics_packages() -> None:
    code = (
        "import sys, auditor.probes.affinity; "
        "print(sorted(m for m in ('pingouin', 'statsmodels', 'litellm', 'celery') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


# --- the reported partial correlation against pingouin ------------------------------------------


def test_analyze_point_estimates_are_pingouins(small_world: Bundle) -> None:
    """Reference: pingouin.partial_corr on the pair table that analyze reports."""
    report = analyze_affinity(small_world, FAST)
    for judge in report.judges:
        assert judge.status == "ok"
        used = [p for p in report.pairs if p.judge == judge.judge and not p.excluded]
        data = pd.DataFrame(
            {
                "score": [p.judgment_score for p in used],
                "capa": [p.capa for p in used],
                "accuracy": [p.accuracy for p in used],
            }
        )
        ref = pingouin_row(data)
        assert judge.n_candidates == len(used) == int(ref["n"])
        assert judge.partial_r == pytest.approx(float(ref["r"]), abs=1e-12)
        assert judge.p_value == pytest.approx(p_column(ref), abs=1e-12)
        assert judge.ci95 is not None
        assert np.array_equal(np.round(np.round(judge.ci95, 6), 2), np.asarray(ref["CI95"]))
        assert judge.pearson_r == pytest.approx(
            stats.pearsonr(data.score, data.capa).statistic, abs=1e-12
        )


def test_spearman_setting_reaches_pingouin(small_world: Bundle) -> None:
    report = analyze_affinity(small_world, FAST.model_copy(update={"method": "spearman"}))
    judge = report.judges[0]
    used = [p for p in report.pairs if p.judge == judge.judge and not p.excluded]
    data = pd.DataFrame(
        {
            "score": [p.judgment_score for p in used],
            "capa": [p.capa for p in used],
            "accuracy": [p.accuracy for p in used],
        }
    )
    assert judge.partial_r == pytest.approx(float(pingouin_row(data, "spearman")["r"]), abs=1e-12)
    assert judge.pearson_r == pytest.approx(
        stats.spearmanr(data.score, data.capa).statistic, abs=1e-12
    )


# --- OLS and pooling in the result schema -------------------------------------------------------


def test_ols_equals_least_squares_closed_form() -> None:
    """Reference: numpy lstsq and the textbook formulas s^2 (X'X)^-1, t with n - 3 dof."""
    data = correlated_data(7, 30)
    fit = ols_fit(data.score, data.capa, data.accuracy)
    design = np.column_stack([np.ones(30), data.capa, data.accuracy])
    beta, *_ = np.linalg.lstsq(design, data.score.to_numpy(), rcond=None)
    residual = data.score.to_numpy() - design @ beta
    s2 = residual @ residual / (30 - 3)
    se = np.sqrt(np.diag(s2 * np.linalg.inv(design.T @ design)))
    p = 2 * stats.t.sf(np.abs(beta / se), 30 - 3)
    centered = data.score - data.score.mean()
    r2 = 1 - residual @ residual / (centered @ centered)
    names = ("intercept", "capa", "accuracy")
    assert fit.n == 30
    assert [fit.coefficients[k] for k in names] == pytest.approx(beta, abs=1e-12)
    assert [fit.std_errors[k] for k in names] == pytest.approx(se, abs=1e-12)
    assert [fit.p_values[k] for k in names] == pytest.approx(p, rel=1e-9, abs=1e-15)
    assert fit.r_squared == pytest.approx(r2, abs=1e-12)


# --- a hand-made bundle --------------------------------------------------------------------------

GOLD = [0, 1, 2, 3, 0, 1]
# The judge's verdicts on each candidate's six answers (None = unparseable judge output).
JUDGED = {
    "judge": [1, 1, 1, 1, 1, 1],
    "c1": [1, 0, 1, 0, 1, 0],  # 3/6
    "c2": [1, 0, None, 1, 1, None],  # 3/4, 2 invalid
    "c3": [0, 0, 0, 1, None, 0],  # 1/5, 1 invalid
    "c4": [1, 1, 1, 1, 0, 1],  # 5/6
    "c5": [0, 1, 0, 1, 0, 1],  # 3/6
    "c6": [None] * 6,  # no valid verdict
    "c7": [1, 0, 1, 0, 0, 0],  # answered no MCQ item: no CAPA, no accuracy
}
FAMILY = {"judge": "x", "c1": "x", "c2": "y", "c3": "y", "c4": "y", "c5": None, "c6": "z"}


def tiny_bundle() -> Bundle:
    rng = np.random.default_rng(42)
    items = [
        Item(id=f"q{i}", question=f"question {i}", options=["a", "b", "c", "d"], gold=g)
        for i, g in enumerate(GOLD)
    ]
    models = [ModelInfo(name=name, family=FAMILY.get(name)) for name in JUDGED]
    outputs = [
        Output(model=name, item=item.id, probs=rng.dirichlet(np.ones(4)).tolist())
        for name in JUDGED
        if name != "c7"
        for item in items
    ]
    verdicts = [
        Verdict(judge="judge", candidate=name, item=f"q{i}", verdict=v)
        for name, values in JUDGED.items()
        for i, v in enumerate(values)
    ]
    # A second judge that judged only c3, once validly: it has too little data.
    verdicts += [
        Verdict(judge="c2", candidate="c3", item="q0", verdict=1),
        Verdict(judge="c2", candidate="c3", item="q1", verdict=None),
    ]
    return Bundle(items=items, models=models, outputs=outputs, verdicts=verdicts)


def test_judgment_scores_hand_worked() -> None:
    table = judgment_scores(tiny_bundle().verdicts).set_index(["judge", "candidate"])
    expected = {  # (n_valid, n_invalid, score) from JUDGED by hand
        "judge": (6, 0, 1.0),
        "c1": (6, 0, 0.5),
        "c2": (4, 2, 0.75),
        "c3": (5, 1, 0.2),
        "c4": (6, 0, 5 / 6),
        "c5": (6, 0, 0.5),
        "c7": (6, 0, 2 / 6),
    }
    for name, (n_valid, n_invalid, score) in expected.items():
        row = table.loc[("judge", name)]
        assert (int(row.n_valid), int(row.n_invalid)) == (n_valid, n_invalid)
        assert float(row.score) == pytest.approx(score, abs=1e-15)
    no_valid = table.loc[("judge", "c6")]
    assert int(no_valid.n_valid) == 0 and int(no_valid.n_invalid) == 6
    assert math.isnan(no_valid.score)
    assert int(table.loc[("c2", "c3")].n_one) == 1
    assert len(table) == 9


def test_hand_made_bundle_pairs_exclusions_and_coverage() -> None:
    bundle = tiny_bundle()
    report = analyze_affinity(bundle, FAST)
    pairs = {(p.judge, p.candidate): p for p in report.pairs}
    assert set(pairs) == {("judge", name) for name in JUDGED} | {("c2", "c3")}
    assert pairs[("judge", "judge")].exclusion_reason == "self-pair"
    assert pairs[("judge", "c2")].judgment_score == 0.75
    assert (pairs[("judge", "c2")].n_valid, pairs[("judge", "c2")].n_invalid) == (4, 2)
    assert pairs[("judge", "c6")].judgment_score is None
    assert pairs[("judge", "c6")].exclusion_reason == "no valid verdict (6 invalid)"
    assert pairs[("judge", "c7")].capa is None
    assert pairs[("judge", "c7")].exclusion_reason.startswith("CAPA undefined")
    assert pairs[("judge", "c7")].accuracy is None
    for name in ("c1", "c2", "c3", "c4", "c5"):
        pair = pairs[("judge", name)]
        assert not pair.excluded and pair.capa_kind == "probabilistic" and pair.capa is not None
        choices = [int(np.argmax(o.probs)) for o in bundle.outputs if o.model == name]
        assert pair.accuracy == pytest.approx(np.mean(np.equal(choices, GOLD)), abs=1e-15)

    judges = {j.judge: j for j in report.judges}
    assert list(judges) == ["judge", "c2"]  # the order of bundle.models
    main = judges["judge"]
    assert main.status == "ok" and main.n_candidates == 5
    assert sorted(main.excluded_candidates) == ["c6", "c7", "judge"]
    assert judges["c2"].status == "insufficient_data"
    assert judges["c2"].reason is not None and judges["c2"].reason.startswith("1 usable")
    assert judges["c2"].partial_r is None and judges["c2"].p_holm is None

    coverage = report.coverage
    assert (coverage.n_items, coverage.n_outputs, coverage.n_verdicts) == (6, 42, 50)
    assert coverage.n_invalid_verdicts == 2 + 1 + 6 + 1
    # judge: c6 lacks a valid verdict; c2: all but c3 (judge, c1, c4, c5, c6, c7).
    assert coverage.pairs_without_verdicts == 1 + 6
    assert any("c7" in note and "answered no item" in note for note in coverage.notes)
    assert any(note.startswith("judge: 9 invalid") for note in coverage.notes)
    summaries = {m.name: m for m in report.models}
    assert summaries["c7"].accuracy is None and summaries["c7"].n_items == 0
    assert summaries["c2"].is_judge and summaries["c2"].is_candidate
    assert not summaries["c6"].is_judge and summaries["c6"].is_candidate


def test_same_family_and_configured_exclusions_leave_insufficient_data() -> None:
    settings = FAST.model_copy(
        update={"exclude_same_family": True, "exclude_pairs": [("judge", "c4")]}
    )
    report = analyze_affinity(tiny_bundle(), settings)
    pairs = {(p.judge, p.candidate): p for p in report.pairs}
    assert pairs[("judge", "c1")].exclusion_reason == "same family as the judge (x)"
    assert pairs[("judge", "c5")].excluded is False  # family unknown: never "same family"
    assert pairs[("judge", "c4")].exclusion_reason == (
        "excluded by configuration (settings.exclude_pairs)"
    )
    judge = report.judges[0]
    assert judge.status == "insufficient_data" and judge.n_candidates == 3
    assert judge.reason == "3 usable candidate(s); at least 5 needed (settings.min_candidates)"
    assert (judge.partial_r, judge.flagged) == (None, False)
    assert report.pooled.n_judges == 0 and report.pooled.r is None


def test_constant_scores_are_insufficient_data_not_an_error() -> None:
    bundle = tiny_bundle()
    flat = [v.model_copy(update={"verdict": 1}) for v in bundle.verdicts if v.judge == "judge"]
    report = analyze_affinity(bundle.model_copy(update={"verdicts": flat}), FAST)
    assert report.judges[0].status == "insufficient_data"
    assert (
        report.judges[0].reason is not None
        and "same for every candidate" in report.judges[0].reason
    )


def graded_bundle(ones: list[int]) -> Bundle:
    """Five candidates; candidate k answers the first k of six items right (accuracy k/6) and
    the judge accepts its answers to the first ``ones[k - 1]`` items."""
    rng = np.random.default_rng(7)
    items = [
        Item(id=f"q{i}", question=f"question {i}", options=["a", "b", "c", "d"], gold=g)
        for i, g in enumerate(GOLD)
    ]
    names = ["judge", "c1", "c2", "c3", "c4", "c5"]
    outputs = []
    for k, name in enumerate(names):
        for i, item in enumerate(items):
            chosen = item.gold if i < k else (item.gold + 1 + (i + k) % 3) % 4
            probs = 0.6 * np.eye(4)[chosen] + 0.4 * rng.dirichlet(np.ones(4))
            outputs.append(Output(model=name, item=item.id, probs=probs.tolist()))
    verdicts = [
        Verdict(judge="judge", candidate=name, item=item.id, verdict=int(i < ones[k - 1]))
        for k, name in enumerate(names)
        if k > 0
        for i, item in enumerate(items)
    ]
    return Bundle(
        items=items, models=[ModelInfo(name=n) for n in names], outputs=outputs, verdicts=verdicts
    )


def test_scores_monotone_in_accuracy_are_insufficient_for_spearman() -> None:
    """Hand-worked: scores (1, 2, 4, 5, 6)/6 rise with accuracies (1, ..., 5)/6, not linearly.
    The Pearson partial r exists; the Spearman one does not (rank(score) = rank(accuracy))."""
    bundle = graded_bundle([1, 2, 4, 5, 6])
    pearson = analyze_affinity(bundle, FAST)
    assert [p.accuracy for p in pearson.pairs] == pytest.approx([k / 6 for k in range(1, 6)])
    assert pearson.judges[0].status == "ok"
    spearman = analyze_affinity(bundle, FAST.model_copy(update={"method": "spearman"})).judges[0]
    assert spearman.status == "insufficient_data"
    assert spearman.reason is not None and "monotone function of accuracy" in spearman.reason
    linear = analyze_affinity(graded_bundle([1, 2, 3, 4, 5]), FAST).judges[0]
    assert linear.status == "insufficient_data"
    assert linear.reason is not None and "linear function of accuracy" in linear.reason


def test_analyze_rejects_inconsistent_inputs() -> None:
    bundle = tiny_bundle()
    with pytest.raises(
        ValueError, match=r"settings.exclude_pairs\[0\]: unknown candidate 'nobody'"
    ):
        analyze_affinity(bundle, FAST.model_copy(update={"exclude_pairs": [("judge", "nobody")]}))
    twice = bundle.model_copy(update={"verdicts": [*bundle.verdicts, bundle.verdicts[8]]})
    duplicate = "duplicate verdict for judge='judge', candidate='c1', item='q2'"
    with pytest.raises(ValueError, match=duplicate):
        analyze_affinity(twice, FAST)
    stranger = Verdict(judge="ghost", candidate="c1", item="q0", verdict=1)
    with pytest.raises(ValueError, match=r"verdicts\[\*\].judge: unknown judge 'ghost'"):
        analyze_affinity(bundle.model_copy(update={"verdicts": [stranger]}), FAST)
    with pytest.raises(ValueError, match="'input_sha256' is computed by analyze"):
        analyze_affinity(bundle, FAST, provenance={"input_sha256": "0" * 64})
    with pytest.raises(ValueError, match=r"settings\.seed: must be non-negative; got -3"):
        analyze_affinity(bundle, FAST.model_copy(update={"seed": -3}))


def test_duplicate_verdicts_found_by_dense_and_sparse_counting() -> None:
    """Both duplicate searches (a dense count when judges x candidates x items is small
    relative to the verdicts, a sort otherwise) name the first repeated record."""
    bundle = tiny_bundle()
    sparse = [
        Verdict(judge="judge", candidate="c1", item="q0", verdict=1),
        Verdict(judge="c2", candidate="c3", item="q1", verdict=0),
        Verdict(judge="judge", candidate="c4", item="q2", verdict=1),
        Verdict(judge="c2", candidate="c5", item="q3", verdict=None),
        Verdict(judge="c2", candidate="c3", item="q1", verdict=1),
    ]
    dense = [*bundle.verdicts, bundle.verdicts[8]]
    for verdicts, named in ((sparse, "'c2', candidate='c3', item='q1'"), (dense, "'judge'")):
        with pytest.raises(ValueError, match=f"duplicate verdict for judge={named}"):
            analyze_affinity(bundle.model_copy(update={"verdicts": verdicts}), FAST)
    assert analyze_affinity(bundle.model_copy(update={"verdicts": sparse[:4]}), FAST).judges


# --- the report as a whole -----------------------------------------------------------------------


def test_report_provenance_flags_and_round_trip(small_world: Bundle) -> None:
    report = analyze_affinity(small_world, FAST, provenance={"audit_id": "a-1", "spec": {"k": 1}})
    canonical = json.dumps(
        small_world.model_dump(mode="json"), sort_keys=True, separators=(",", ":")
    )
    assert report.provenance.input_sha256 == hashlib.sha256(canonical.encode()).hexdigest()
    assert report.provenance.audit_id == "a-1" and report.provenance.spec == {"k": 1}
    assert report.provenance.software == {} and report.provenance.created_at is None  # pure
    assert AffinityReport.model_validate_json(report.model_dump_json()) == report

    ok = [j for j in report.judges if j.status == "ok"]
    holm = adjust_p_values([j.p_value for j in ok])["holm"]
    for judge, expected in zip(ok, holm, strict=True):
        assert judge.p_holm == judge.p_adjusted == expected
        assert judge.flagged == (judge.p_adjusted < 0.05 and judge.partial_r > 0.0)
        assert judge.bootstrap_ci95 is not None and judge.permutation_p is not None
        assert judge.ols is not None and judge.ols.n == judge.n_candidates
    pooled = pooled_estimate([j.partial_r for j in ok], [j.n_candidates for j in ok])
    assert report.pooled == pooled
    by_hand = fisher_combine([j.partial_r for j in ok], [j.n_candidates for j in ok], 1)
    assert (pooled.n_judges, pooled.r, pooled.ci95) == (by_hand.n_used, by_hand.r, by_hand.ci95)

    bh = analyze_affinity(
        small_world, FAST.model_copy(update={"correction": "fdr_bh", "min_effect": 0.99})
    )
    assert all(j.p_adjusted == j.p_fdr_bh and not j.flagged for j in bh.judges)


def test_pooled_estimate_notes_estimates_left_out() -> None:
    """Hand-worked: n = 4 with one covariate carries no weight (n - 3 - 1 = 0)."""
    tiny = pooled_estimate([0.9, 0.4], [4, 30])
    assert tiny.n_judges == 1
    assert tiny.r == pytest.approx(0.4, abs=1e-12)
    assert "1 estimate(s) with n <= 4 were left out" in tiny.note
    assert "left out" not in pooled_estimate([0.9, 0.4], [5, 30]).note


def generic_sha256(bundle: Bundle) -> str:
    """The provenance hash as specified: SHA-256 of json.dumps(model_dump, sorted, compact)."""
    document = json.dumps(bundle.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(document.encode("utf-8")).hexdigest()


def test_bundle_sha256_equals_the_specified_canonical_json(small_world: Bundle) -> None:
    """Reference: the specified expression (`auditor.schemas.canonical`'s one recipe), on
    escapes, non-ASCII text, null verdicts, and a verdict built without validation."""
    assert bundle_sha256(small_world) == generic_sha256(small_world)
    odd = tiny_bundle()
    texts = ['He said "1"\n', "ünïcødé ✓", "tab\there", "\\ back", "\u2028 sep", ""]
    odd_verdicts = [
        v.model_copy(update={"raw": texts[i % len(texts)] if i % 4 else None})
        for i, v in enumerate(odd.verdicts)
    ]
    odd = odd.model_copy(update={"verdicts": odd_verdicts})
    assert bundle_sha256(odd) == generic_sha256(odd)
    empty = odd.model_copy(update={"verdicts": []})
    assert bundle_sha256(empty) == generic_sha256(empty)
    # A verdict built without validation (True instead of 1): the same answer.
    loose = Verdict.model_construct(judge="judge", candidate="c1", item="q0", verdict=True)
    unusual = odd.model_copy(update={"verdicts": [*odd.verdicts[:3], loose]})
    assert bundle_sha256(unusual) == generic_sha256(unusual)


def test_analysis_is_reproducible_and_per_judge_streams_are_independent(
    small_world: Bundle,
) -> None:
    """Same seed, same numbers; a judge's resampling depends on the seed and its own data only."""
    first, second = analyze_affinity(small_world, FAST), analyze_affinity(small_world, FAST)
    assert first.judges == second.judges and first.pairs == second.pairs
    other_seed = analyze_affinity(small_world, FAST.model_copy(update={"seed": 12}))
    assert other_seed.judges[0].bootstrap_ci95 != first.judges[0].bootstrap_ci95
    alone = small_world.model_copy(
        update={"verdicts": [v for v in small_world.verdicts if v.judge == "cygnus-3"]}
    )
    solo = analyze_affinity(alone, FAST).judges[0]
    both = next(j for j in first.judges if j.judge == "cygnus-3")
    assert (solo.bootstrap_ci95, solo.permutation_p) == (both.bootstrap_ci95, both.permutation_p)


# --- simulation with planted truth ---------------------------------------------------------------


def test_planted_bundle_equals_ecosystem_bundle() -> None:
    """The fast builder used below must give exactly the ecosystem's own verdicts."""
    eco = ecosystem(3, 0.4, size=3, n_items=25, judges=["atlas-2", "boreal-1"])
    assert planted_bundle(eco) == eco.bundle()


@pytest.mark.slow
def test_null_false_flag_rate_is_at_most_alpha() -> None:
    """Planted truth: affinity_strength = 0, so a judge grades by the truth alone and its score
    depends on accuracy only; CAPA carries no extra information.

    16 ecosystems x 8 judges = 128 judge tests (4 families x 8 models, 31 candidates each, 100
    items). Verdict noise is keyed by (seed, judge, item, answer), so, given the answers, the
    judges' tests are independent and the number of false flags is Binomial(128, <= alpha).
    Tolerance: alpha + 3 SE with SE = sqrt(alpha (1 - alpha) / 128) = 0.019, for the Holm flags
    and for the permutation p; and the raw p-values must look uniform (Kolmogorov-Smirnov
    p > 0.01), which catches a mis-calibrated test in either direction.
    """
    alpha, judges = 0.05, [f"{family}-{k}" for family in FAMILIES for k in (3, 6)]
    settings = AnalysisSettings(n_bootstrap=0, n_permutations=199, seed=1)
    flags, raw_p, permutation = [], [], []
    for seed in range(100, 116):
        report = analyze_affinity(
            planted_bundle(ecosystem(seed, 0.0, size=8, n_items=100, judges=judges)), settings
        )
        for judge in report.judges:
            assert judge.status == "ok" and judge.n_candidates == 31
            flags.append(judge.flagged)
            raw_p.append(judge.p_value)
            permutation.append(judge.permutation_p)
    n = len(flags)
    tolerance = alpha + 3 * math.sqrt(alpha * (1 - alpha) / n)
    assert n == 128
    assert np.mean(flags) <= tolerance
    assert np.mean(np.array(permutation) < alpha) <= tolerance
    assert stats.kstest(raw_p, "uniform").pvalue > 0.01


@pytest.mark.slow
def test_planted_affinity_is_flagged_with_high_power() -> None:
    """Planted truth: affinity_strength = 0.5 (half of each verdict follows the judge's own
    answer). 6 ecosystems x 4 mid-ability judges (35 candidates, 200 items): at least 90% of the
    judges must be flagged after Holm, every estimate positive, and every pooled r significant."""
    judges = [f"{family}-5" for family in FAMILIES]
    settings = AnalysisSettings(n_bootstrap=200, n_permutations=200, seed=2)
    flags, estimates = [], []
    for seed in range(6):
        eco = ecosystem(seed, 0.5, size=9, n_items=200, judges=judges, p_hit=0.95, p_miss=0.05)
        report = analyze_affinity(planted_bundle(eco), settings)
        assert report.pooled.p_value is not None and report.pooled.p_value < 1e-3
        for judge in report.judges:
            flags.append(judge.flagged)
            estimates.append(judge.partial_r)
            assert judge.bootstrap_ci95 is not None
    assert np.mean(flags) >= 0.9
    assert min(estimates) > 0
