"""Verbosity bias: padded copies that add no content, and the pointwise slope on length.

Padding (Zheng et al. 2023 "repetitive list" attack; SCIENCE.md section 4): an answer and its
padded copy (the ``pad`` variant) are compared in both orders. Estimate = share of decisive
verdicts won by the padded copy (exact binomial test against 0.5, Wilson CI; a bias is > 0.5);
failure rate = padded wins / parsed verdicts (ties count as not won).

Pointwise slope: for a judge's 0/1 verdicts on free-form answers, the logistic regression
verdict ~ 1 + z(log characters) + correct (statsmodels Logit), where correct is the candidate's
ground-truth multiple-choice correctness on the item; the coefficient of length is the bias.

The padding transforms (`pad_answer`) are deterministic given a seed and add no content:
- ``preamble``: a courteous opening sentence chosen by the seed from ``PREAMBLES``;
- ``restate``: the answer, then "To restate the answer: " and the answer again;
- ``filler``: two content-free sentences chosen by the seed from ``FILLERS`` after the answer.
Example: ``pad_answer("Paris.", "restate", 0)`` = "Paris.\\n\\nTo restate the answer: Paris."
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar, Final, TypeAlias

import numpy as np

from auditor.probes._pairwise import by_judge, flag, judges_in_order, refs
from auditor.probes._planning import base_pairs, both_orders, stable_index
from auditor.probes.base import ProbeContext
from auditor.schemas.bundle import Bundle, Comparison
from auditor.schemas.candidates import PlannedComparison, variant_id
from auditor.schemas.columns import BundleColumns
from auditor.schemas.probe import ProbeResult
from auditor.schemas.verbosity import VerbosityFinding, VerbosityResult
from auditor.stats.distributions import scipy_stats as _scipy_stats
from auditor.stats.proportions import wilson_interval

__all__ = [
    "FILLERS",
    "PADDINGS",
    "PREAMBLES",
    "RESTATE_MARKER",
    "VerbosityProbe",
    "length_slope",
    "pad_answer",
    "padding_counts",
]

PADDINGS: Final = ("preamble", "restate", "filler")
PREAMBLES: Final = (
    "Thank you for this interesting question; here is a careful and complete answer.",
    "This is a question that deserves a thorough and well-considered response.",
    "Let me provide a detailed, accurate and comprehensive answer to this question.",
)
FILLERS: Final = (
    "It is important to consider every aspect of the question carefully.",
    "This answer has been checked thoroughly for accuracy and completeness.",
    "Many experts would agree that a precise answer matters here.",
    "The reasoning above follows directly from well-established principles.",
    "Each step has been considered with great care and attention to detail.",
)
MIN_SLOPE_VERDICTS: Final = 20
RESTATE_MARKER: Final = "\n\nTo restate the answer: "


def pad_answer(text: str, transform: str, seed: int) -> str:
    """``text`` padded by ``transform`` (one of `PADDINGS`), choices drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    if transform == "preamble":
        return f"{PREAMBLES[int(rng.integers(len(PREAMBLES)))]} {text}"
    if transform == "restate":
        return f"{text}{RESTATE_MARKER}{text}"
    if transform == "filler":
        first, second = rng.choice(len(FILLERS), size=2, replace=False)
        return f"{text} {FILLERS[int(first)]} {FILLERS[int(second)]}"
    raise ValueError(f"transform: must be one of {', '.join(PADDINGS)}; got {transform!r}")


def padding_counts(comparisons: list[Comparison]) -> tuple[int, int, int]:
    """(padded wins, decisive verdicts, parsed verdicts) over padded-vs-original comparisons."""
    wins = decisive = parsed = 0
    for comparison in comparisons:
        a, b = refs(comparison)
        padded = [ref for ref in (a, b) if ref.kind == "pad"]
        if len(padded) != 1:
            continue
        other = b if padded[0] is a else a
        if other.kind is not None or other.id != padded[0].base or comparison.winner is None:
            continue
        parsed += 1
        if comparison.winner != "tie":
            decisive += 1
            wins += comparison.winner == padded[0].id
    return wins, decisive, parsed


def length_slope(
    verdicts: Sequence[int], lengths: Sequence[int], correct: Sequence[int]
) -> tuple[float, tuple[float, float], float] | None:
    """Logit slope of verdict on z-scored log length given correctness: (coef, CI, p), or None
    when the fit is impossible (constant columns, perfect separation, too few verdicts)."""
    y = np.asarray(verdicts, dtype=float)
    if y.size < MIN_SLOPE_VERDICTS or y.min() == y.max():
        return None
    log_length = np.log(np.maximum(np.asarray(lengths, dtype=float), 1.0))
    if np.ptp(log_length) == 0:
        return None
    z = (log_length - log_length.mean()) / log_length.std()
    columns = [np.ones_like(z), z]
    c = np.asarray(correct, dtype=float)
    if c.min() != c.max():
        columns.append(c)
    import warnings

    # heavy; imported only when a slope is fitted
    from statsmodels.discrete.discrete_model import Logit

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = Logit(y, np.column_stack(columns)).fit(disp=0, maxiter=100)
    except Exception:  # PerfectSeparationError, singular matrix: the slope is undefined
        return None
    coefficient, p_value = float(fit.params[1]), float(fit.pvalues[1])
    low, high = (float(v) for v in fit.conf_int()[1])
    if not all(math.isfinite(v) for v in (coefficient, p_value, low, high)):
        return None
    return coefficient, (low, high), p_value


Pointwise: TypeAlias = tuple[list[int], list[int], list[int]]
"""One judge's pointwise verdicts on free-form answers: (verdict, answer length, correct)."""


def _pointwise_by_judge(bundle: Bundle) -> dict[str, Pointwise]:
    """Per judge, its non-null pointwise verdicts on answers with a free-form ``response`` and
    a choice (stated, else the argmax of the probabilities); the last such output of a
    (candidate, item) in bundle order is the answer judged."""
    gold = {item.id: item.gold for item in bundle.items}
    answers = {}
    for output in bundle.outputs:
        if output.response is None or output.item not in gold:
            continue
        choice = output.choice
        if choice is None and output.probs is not None:
            choice = int(np.argmax(output.probs))
        if choice is not None:
            answers[(output.model, output.item)] = (
                len(output.response),
                choice == gold[output.item],
            )
    found: dict[str, Pointwise] = defaultdict(lambda: ([], [], []))
    for verdict in bundle.verdicts:
        answer = answers.get((verdict.candidate, verdict.item))
        if verdict.verdict is None or answer is None:
            continue
        verdicts, lengths, correct = found[verdict.judge]
        verdicts.append(verdict.verdict)
        lengths.append(answer[0])
        correct.append(int(answer[1]))
    return dict(found)


def _pointwise_by_judge_columns(columns: BundleColumns) -> dict[str, Pointwise]:
    """`_pointwise_by_judge` on columns: the record form is never built."""
    responses = columns.output_response
    if responses is None:
        return {}
    rows = np.flatnonzero(np.fromiter(_not_none(responses), bool, len(responses)))
    chosen = columns.chosen_options(rows)
    gold = np.fromiter((item.gold for item in columns.items), np.int64, len(columns.items))
    answers = {}
    for row, choice in zip(rows.tolist(), chosen.tolist(), strict=True):
        if choice >= 0:
            item = int(columns.output_item[row])
            key = (int(columns.output_model[row]), item)
            answers[key] = (len(responses[row] or ""), choice == gold[item])
    found: dict[str, Pointwise] = defaultdict(lambda: ([], [], []))
    names = [model.name for model in columns.models]
    for judge, candidate, item, value in zip(
        columns.verdict_judge.tolist(),
        columns.verdict_candidate.tolist(),
        columns.verdict_item.tolist(),
        columns.verdict_value.tolist(),
        strict=True,
    ):
        answer = answers.get((candidate, item))
        if value < 0 or answer is None:
            continue
        verdicts, lengths, correct = found[names[judge]]
        verdicts.append(value)
        lengths.append(answer[0])
        correct.append(int(answer[1]))
    return dict(found)


def _not_none(values: list[Any]) -> Iterator[bool]:
    return (value is not None for value in values)


def verbosity_finding(
    judge: str, comparisons: list[Comparison], pointwise: Pointwise, alpha: float
) -> VerbosityFinding:
    wins, decisive, parsed = padding_counts(comparisons)
    verdicts, lengths, correct = pointwise
    slope = length_slope(verdicts, lengths, correct)
    slope_fields: dict[str, Any] = {"length_n": len(verdicts)}
    if slope is not None:
        slope_fields.update(
            length_slope=slope[0], length_slope_ci95=slope[1], length_slope_p=slope[2]
        )
    if decisive:
        rate = wins / decisive
        p_value = float(_scipy_stats.binomtest(wins, decisive, 0.5).pvalue)
        return VerbosityFinding(
            judge=judge,
            measure="padding",
            n=decisive,
            estimate=rate,
            ci95=wilson_interval(wins, decisive),
            p_value=p_value,
            flagged=flag(p_value, alpha, rate > 0.5),
            failure_rate=wins / parsed,
            padded_pairs=parsed,
            **slope_fields,
        )
    if slope is not None:
        return VerbosityFinding(
            judge=judge,
            measure="length_slope",
            n=len(verdicts),
            estimate=slope[0],
            ci95=slope[1],
            p_value=slope[2],
            flagged=flag(slope[2], alpha, slope[0] > 0),
            padded_pairs=parsed,
            **slope_fields,
        )
    return VerbosityFinding(
        judge=judge,
        measure="padding",
        status="insufficient_data",
        reason="no decisive padded-vs-original verdict and no fit of verdict on length",
        n=0,
        padded_pairs=parsed,
        **slope_fields,
    )


def _any_response(bundle: Bundle | BundleColumns) -> bool:
    """Whether some output carries a free-form ``response``."""
    if isinstance(bundle, BundleColumns):
        return bundle.output_response is not None and any(
            r is not None for r in bundle.output_response
        )
    return any(o.response is not None for o in bundle.outputs)


class VerbosityProbe:
    name: ClassVar[str] = "verbosity"
    title: ClassVar[str] = "Verbosity bias"
    result_model: ClassVar[type[ProbeResult]] = VerbosityResult

    def missing_inputs(self, bundle: Bundle | BundleColumns) -> str | None:
        if any("::pad:" in c.candidate_a + c.candidate_b for c in bundle.comparisons):
            return None
        if bundle.n_verdicts and _any_response(bundle):
            return None
        return "no padded comparisons and no pointwise verdicts on free-form answers"

    def plan(self, spec: Any, base: Bundle, answers: Any) -> Sequence[PlannedComparison]:
        """The first candidate's answer against its padded copy (transforms rotating through
        `PADDINGS`, seeded per judge, item and candidate), in both orders."""
        calls: list[PlannedComparison] = []
        for pair in base_pairs(spec, base, answers):
            transform = PADDINGS[pair.index % len(PADDINGS)]
            seed = stable_index(2**31, spec.battery.seed, pair.judge, pair.item.id, pair.a)
            padded = pad_answer(pair.text_a, transform, seed)
            calls += both_orders(
                self.name, pair, pair.a, variant_id(pair.a, "pad", transform), pair.text_a, padded
            )
        return calls

    def compute(self, context: ProbeContext) -> VerbosityResult:
        source = context.source
        grouped = by_judge(source.comparisons)
        if isinstance(source, BundleColumns):
            pointwise = _pointwise_by_judge_columns(source)
            codes = np.unique(source.verdict_judge).tolist()
            judged = {source.models[code].name for code in codes}
        else:
            pointwise = _pointwise_by_judge(source)
            judged = {verdict.judge for verdict in source.verdicts}
        empty: Pointwise = ([], [], [])
        return VerbosityResult(
            estimate_meaning="padding: share of decisive verdicts won by the padded copy "
            "(> 0.5 is a bias); length_slope: log-odds of 'correct' per SD of log length, "
            "given correctness (> 0 is a bias)",
            findings=[
                verbosity_finding(
                    judge,
                    grouped.get(judge, []),
                    pointwise.get(judge, empty),
                    context.settings.alpha,
                )
                for judge in judges_in_order(source, set(grouped) | judged)
            ],
        )


PROBE = VerbosityProbe()
