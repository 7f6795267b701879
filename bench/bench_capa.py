"""All-pairs CAPA: our vectorized `capa_matrix` against lm-sim looping over every pair.

50 models x 2,000 items x 4 options (1,225 pairs). lm-sim 0.1.1 computes one pair at a time in
Python (about 34 ms per pair here); `capa_matrix` does every pair with one matrix product.
Prints both times, the speed ratio, and the largest absolute difference between the two.

Run: ``python bench/bench_capa.py``.
"""

from __future__ import annotations

import time

import numpy as np
from lmsim.metrics import CAPA

from auditor.stats.similarity import capa_matrix, response_matrix_from_arrays

N_MODELS, N_ITEMS, N_OPTIONS = 50, 2_000, 4
SEED = 20250206
REPEATS = 20


def build_inputs(seed: int = SEED) -> tuple[list[list[np.ndarray]], list[int]]:
    """Per-model lists of per-item Dirichlet probability vectors, with a per-model
    concentration so models range from sharp to flat; uniform random gold."""
    rng = np.random.default_rng(seed)
    gold = [int(g) for g in rng.integers(0, N_OPTIONS, size=N_ITEMS)]
    probs = []
    for _ in range(N_MODELS):
        concentration = rng.uniform(0.2, 2.0)
        probs.append(list(rng.dirichlet(np.full(N_OPTIONS, concentration), size=N_ITEMS)))
    return probs, gold


def main() -> None:
    probs, gold = build_inputs()
    n_pairs = N_MODELS * (N_MODELS - 1) // 2
    print(f"CAPA of all {n_pairs} pairs: {N_MODELS} models x {N_ITEMS} items x {N_OPTIONS} options")

    started = time.perf_counter()
    responses = response_matrix_from_arrays(probs, gold)
    build_time = time.perf_counter() - started

    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        ours = capa_matrix(responses)
        times.append(time.perf_counter() - started)
    ours_time = min(times)

    reference = np.full((N_MODELS, N_MODELS), np.nan)
    started = time.perf_counter()
    for i in range(N_MODELS):
        for j in range(i + 1, N_MODELS):
            reference[i, j] = CAPA().compute_k(probs[i], probs[j], gold)
    lmsim_time = time.perf_counter() - started

    upper = np.triu_indices(N_MODELS, k=1)
    max_difference = float(np.max(np.abs(ours.values[upper] - reference[upper])))
    print(
        f"ours : capa_matrix {ours_time * 1e3:.2f} ms (best of {REPEATS}); building the "
        f"ResponseMatrix from the arrays (validation included) {build_time * 1e3:.0f} ms"
    )
    print(
        f"lm-sim: {lmsim_time:.1f} s for {n_pairs} pairs ({lmsim_time / n_pairs * 1e3:.1f} ms/pair)"
    )
    print(
        f"speed ratio: {lmsim_time / ours_time:,.0f}x (capa_matrix alone), "
        f"{lmsim_time / (ours_time + build_time):,.0f}x (including building the matrix)"
    )
    print(f"max |ours - lm-sim| over all pairs: {max_difference:.2e}")
    if not max_difference <= 1e-12:
        raise SystemExit("ours and lm-sim disagree by more than 1e-12")


if __name__ == "__main__":
    main()
