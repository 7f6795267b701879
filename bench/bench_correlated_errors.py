"""Benchmark of the correlated-errors core at Kim et al.'s scale: 300 models x 12,000 items x
10 options.

Times, in one process and on the same synthetic choices (each model right with its own accuracy,
a wrong answer drawn from a provider-shared trap or uniformly):

1. the both-wrong error agreement matrix (`auditor.stats.similarity.error_agreement`: one count Gram
   per option index plus one for "both wrong", all matrix products);
2. the pair regression over the 44,850 pairs with dyadic and two-way cluster-robust SEs
   (`auditor.stats.pair_regression`);
3. the reference: a bare float32 product ``X @ X.T`` of the one-hot choice matrix,
   300 x 120,000 (the same multiply-adds as the ten per-option products in 1).

Peak memory is the tracemalloc peak of each step (numpy's allocations are traced). Times are the
best of a few runs, so other processes on a shared machine disturb them less.

Run: ``python bench/bench_correlated_errors.py`` (a script that prints figures, not a test).
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable

import numpy as np

from auditor.schemas.bundle import ResponseMatrix
from auditor.stats.pair_regression import pair_design, pair_regression
from auditor.stats.similarity import error_agreement

N_MODELS, N_ITEMS, N_OPTIONS = 300, 12_000, 10
N_PROVIDERS = 20
REPEATS = 3


def synthetic(seed: int = 0) -> tuple[ResponseMatrix, list[str], list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    provider = rng.integers(0, N_PROVIDERS, N_MODELS)
    accuracy = rng.uniform(0.3, 0.9, N_MODELS)
    gold = rng.integers(0, N_OPTIONS, N_ITEMS)
    trap = rng.integers(1, N_OPTIONS, (N_PROVIDERS, N_ITEMS))
    correct = rng.random((N_MODELS, N_ITEMS)) < accuracy[:, None]
    wrong_choice = np.where(
        rng.random((N_MODELS, N_ITEMS)) < 0.3,
        trap[provider],
        rng.integers(1, N_OPTIONS, (N_MODELS, N_ITEMS)),
    )
    choice = np.where(correct, gold[None, :], (gold[None, :] + wrong_choice) % N_OPTIONS)
    offsets = np.arange(N_ITEMS + 1, dtype=np.int64) * N_OPTIONS
    responses = ResponseMatrix(
        models=tuple(f"m{m}" for m in range(N_MODELS)),
        items=tuple(f"x{x}" for x in range(N_ITEMS)),
        offsets=offsets,
        gold=gold.astype(np.int64),
        probs=np.zeros((N_MODELS, 0)),  # not read by error_agreement
        choice=choice.astype(np.int64),
        present=np.ones((N_MODELS, N_ITEMS), dtype=bool),
        probabilistic=np.zeros(N_MODELS, dtype=bool),
    )
    names = [f"provider{p}" for p in provider]
    families = [f"family{p}.{m % 2}" for m, p in enumerate(provider)]
    return responses, names, families, (choice == gold[None, :]).mean(axis=1)


def measure(run: Callable[[], object]) -> tuple[float, float, object]:
    """(best seconds of REPEATS, tracemalloc peak MiB of one run, the result)."""
    times = []
    result: object = None
    for _ in range(REPEATS):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return min(times), peak / 2**20, result


def main() -> None:
    responses, providers, families, accuracy = synthetic()
    run_all(responses, providers, families, accuracy)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        print("\n(threadpoolctl not installed: the single-threaded BLAS run is skipped)")
        return
    print("\nBLAS limited to 1 thread (threadpoolctl), as in one-process-per-core workers:")
    with threadpool_limits(limits=1, user_api="blas"):
        run_all(responses, providers, families, accuracy)


def run_all(
    responses: ResponseMatrix, providers: list[str], families: list[str], accuracy: np.ndarray
) -> None:
    one_hot = np.zeros((N_MODELS, N_ITEMS * N_OPTIONS), dtype=np.float32)
    one_hot[
        np.repeat(np.arange(N_MODELS), N_ITEMS),
        (responses.offsets[:-1][None, :] + responses.choice).reshape(-1),
    ] = 1.0
    print(f"{N_MODELS} models x {N_ITEMS:,} items x {N_OPTIONS} options, {N_PROVIDERS} providers")

    ref_time, ref_peak, _ = measure(lambda: one_hot @ one_hot.T)
    print(f"reference  X @ X.T, float32 {one_hot.shape}: {ref_time:.3f} s, peak {ref_peak:.1f} MiB")

    agree_time, agree_peak, matrix = measure(lambda: error_agreement(responses))
    print(
        f"error_agreement: {agree_time:.3f} s ({agree_time / ref_time:.2f}x the reference), "
        f"peak {agree_peak:.0f} MiB"
    )
    values = matrix.values  # type: ignore[attr-defined]

    def regress(clustering: str) -> object:
        design = pair_design(values, responses.models, accuracy, providers, families)
        return pair_regression(design, clustering=clustering)  # type: ignore[arg-type]

    for clustering in ("dyadic-conservative", "two-way"):
        reg_time, reg_peak, fitted = measure(lambda c=clustering: regress(c))
        fit = fitted.fit  # type: ignore[attr-defined]
        term = fit.terms.index("same_provider")
        print(
            f"pair regression ({clustering}, {fit.n} pairs): {reg_time:.3f} s "
            f"({reg_time / ref_time:.2f}x the reference), peak {reg_peak:.0f} MiB; "
            f"same_provider {fit.coef[term]:+.4f} (SE {fit.se[term]:.4f})"
        )
    total = agree_time + reg_time
    print(f"agreement + regression: {total:.3f} s = {total / ref_time:.2f}x the reference product")


if __name__ == "__main__":
    main()
