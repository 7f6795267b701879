"""Reading three-way outcomes and item difficulty for the reliability probes (Zhou et al.,
Nature 2024), so `reliability`, `supervision` and `prompt_stability` read them by one rule.

- Truth: the bundle's `labels`, from the highest-precedence source present (human, then
  grader, then planted); within it, the outcome most annotators gave an answer; an answer on
  which they tie is left out and counted.
- Difficulty: every item's own `difficulty` when all items have one (source ``item``);
  otherwise the proxy, the share of the bundle's models whose primary-template multiple-choice
  answer to the item is wrong (source ``mcq_error_share``; items no model answered get none).
- Bins: `auditor.stats.difficulty.quantile_bins` over the items that have a difficulty.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np

from auditor.schemas.bundle import Bundle, Outcome, response_matrix
from auditor.schemas.reliability import DifficultyBin, DifficultySource, Rate, TruthSource
from auditor.stats.difficulty import quantile_bins
from auditor.stats.proportions import wilson_interval

__all__ = ["Difficulty", "Truth", "difficulty_of", "rate", "truth_of"]

_PRECEDENCE: tuple[TruthSource, ...] = ("human", "grader", "planted")


def rate(k: int, n: int) -> Rate:
    """k / n with its Wilson 95% interval (None when n = 0)."""
    if n == 0:
        return Rate(k=0, n=0)
    return Rate(k=k, n=n, rate=k / n, ci95=wilson_interval(k, n))


@dataclass(frozen=True)
class Truth:
    source: TruthSource | None
    outcomes: dict[tuple[str, str], Outcome]
    """(candidate, item) -> outcome."""
    conflicts: int


def truth_of(bundle: Bundle) -> Truth:
    """The three-way outcome of every labelled answer; see the module docstring."""
    present = {label.source for label in bundle.labels}
    source = next((s for s in _PRECEDENCE if s in present), None)
    votes: dict[tuple[str, str], Counter[Outcome]] = defaultdict(Counter)
    for label in bundle.labels:
        if label.source == source:
            votes[(label.candidate, label.item)][label.outcome] += 1
    outcomes: dict[tuple[str, str], Outcome] = {}
    conflicts = 0
    for key, counter in votes.items():
        ranked = counter.most_common(2)
        if len(ranked) == 2 and ranked[0][1] == ranked[1][1]:
            conflicts += 1
            continue
        outcomes[key] = ranked[0][0]
    return Truth(source, outcomes, conflicts)


@dataclass(frozen=True)
class Difficulty:
    source: DifficultySource | None
    bin_of: dict[str, int]
    """item id -> bin index (0 = easiest); items without a difficulty are absent."""
    value_of: dict[str, float]
    bins: list[DifficultyBin]
    reason: str | None = None


def difficulty_of(bundle: Bundle, n_bins: int) -> Difficulty:
    """Item difficulty, its source and its quantile bins; see the module docstring."""
    source: DifficultySource
    if bundle.items and all(item.difficulty is not None for item in bundle.items):
        source = "item"
        values = {item.id: float(item.difficulty) for item in bundle.items}  # type: ignore[arg-type]
    else:
        source = "mcq_error_share"
        values = {}
        if bundle.outputs:
            matrix = response_matrix(bundle)
            answered = matrix.present.sum(axis=0)
            wrong = ((matrix.choice != matrix.gold[None, :]) & matrix.present).sum(axis=0)
            values = {
                item: float(wrong[x] / answered[x])
                for x, item in enumerate(matrix.items)
                if answered[x] > 0
            }
    if not values:
        return Difficulty(None, {}, {}, [], "no item difficulty and no multiple-choice answers")
    items = list(values)
    array = np.array([values[item] for item in items])
    bins = quantile_bins(array, n_bins)
    described = [
        DifficultyBin(
            index=b,
            low=float(array[bins == b].min()),
            high=float(array[bins == b].max()),
            n_items=int(np.count_nonzero(bins == b)),
        )
        for b in range(int(bins.max()) + 1)
    ]
    return Difficulty(source, dict(zip(items, bins.tolist(), strict=True)), values, described)
