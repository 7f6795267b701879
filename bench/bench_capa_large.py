"""All-pairs CAPA at scale: 1,000 models x 12,000 items x 10 options.

The stacked probability matrix P is 1,000 x 120,000 float64 (960 MB). SCIENCE.md section 1:
all pairwise observed agreements are P @ P.T / |D|, so `capa_matrix` should cost about one such
product. This script times `capa_matrix` and a bare ``P @ P.T`` in the same run, in interleaved
rounds so machine load hits both alike; the target compares the best round of each (the least
noisy estimate on a shared machine) and the median ratio is printed too. It measures memory
in a fresh subprocess per measurement:

- ``inputs``: peak RSS of a process that only builds the inputs (the baseline), and its resident
  size once they are built;
- ``capa``: peak RSS of a process that builds the inputs and runs `capa_matrix`, plus the peak of
  the allocations made inside `capa_matrix` itself (tracemalloc; numpy reports its buffers);
- ``matmul``: the same for a bare ``P @ P.T``.

Targets: capa_matrix within 1.5x of the bare product; peak RSS under 4 GiB.

Run: ``python bench/bench_capa_large.py`` (``--rounds N`` to change the number of timing rounds).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc

import numpy as np

from auditor.schemas.bundle import ResponseMatrix
from auditor.stats.similarity import capa_matrix

N_MODELS, N_ITEMS, N_OPTIONS = 1_000, 12_000, 10
SEED = 20250206
TIME_TARGET = 1.5
MEMORY_TARGET_GIB = 4.0


def build_inputs(seed: int = SEED) -> ResponseMatrix:
    """Dirichlet(1) probability vectors per (model, item), built in place: gamma draws
    normalized per item (this is how a Dirichlet is sampled), so only P itself is allocated."""
    rng = np.random.default_rng(seed)
    probs = rng.standard_gamma(1.0, size=(N_MODELS, N_ITEMS * N_OPTIONS))
    per_item = probs.reshape(N_MODELS, N_ITEMS, N_OPTIONS)
    per_item /= per_item.sum(axis=2, keepdims=True)
    return ResponseMatrix(
        models=tuple(f"model-{i}" for i in range(N_MODELS)),
        items=tuple(f"item-{x}" for x in range(N_ITEMS)),
        offsets=np.arange(N_ITEMS + 1, dtype=np.int64) * N_OPTIONS,
        gold=rng.integers(0, N_OPTIONS, size=N_ITEMS, dtype=np.int64),
        probs=probs,
        choice=per_item.argmax(axis=2).astype(np.int64),
        present=np.ones((N_MODELS, N_ITEMS), dtype=bool),
        probabilistic=np.ones(N_MODELS, dtype=bool),
    )


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def _current_rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def measure_memory(what: str) -> dict[str, float]:
    """Run in a fresh process: build the inputs, then optionally one computation."""
    responses = build_inputs()
    result: dict[str, float] = {"resident_after_inputs": _current_rss_bytes()}
    if what != "inputs":
        tracemalloc.start()
        tracemalloc.reset_peak()
        if what == "capa":
            matrix = capa_matrix(responses)
            assert matrix.values.shape == (N_MODELS, N_MODELS)
        else:
            product = responses.probs @ responses.probs.T
            assert product.shape == (N_MODELS, N_MODELS)
        result["traced_peak"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    result["peak_rss"] = _peak_rss_bytes()
    return result


def memory_in_subprocess(what: str) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, __file__, "--memory", what], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--memory", choices=["inputs", "capa", "matmul"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory:
        print(json.dumps(measure_memory(args.memory)))
        return

    print(f"capa_matrix at {N_MODELS} models x {N_ITEMS} items x {N_OPTIONS} options")
    started = time.perf_counter()
    responses = build_inputs()
    print(
        f"inputs built in {time.perf_counter() - started:.1f} s; "
        f"P is {responses.probs.shape[0]} x {responses.probs.shape[1]} float64 "
        f"({responses.probs.nbytes / 2**20:.0f} MiB)"
    )

    capa_times, matmul_times = [], []
    for _ in range(args.rounds):
        started = time.perf_counter()
        product = responses.probs @ responses.probs.T
        matmul_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        matrix = capa_matrix(responses)
        capa_times.append(time.perf_counter() - started)
    # Sanity: the observed agreement inside capa_matrix is the same product.
    off_diagonal = matrix.values[~np.eye(N_MODELS, dtype=bool)]
    assert np.all(np.isfinite(off_diagonal)) and np.abs(off_diagonal).max() < 0.05
    del product

    print(f"bare P @ P.T   : {' '.join(f'{t:.2f}' for t in matmul_times)} s")
    print(f"capa_matrix    : {' '.join(f'{t:.2f}' for t in capa_times)} s")
    best_ratio = min(capa_times) / min(matmul_times)
    median_ratio = statistics.median(capa_times) / statistics.median(matmul_times)
    print(
        f"time: capa_matrix {min(capa_times):.2f} s (best of {args.rounds}), "
        f"bare P @ P.T {min(matmul_times):.2f} s; ratio {best_ratio:.2f}x best-to-best, "
        f"{median_ratio:.2f}x median-to-median (target <= {TIME_TARGET}x)"
    )
    del responses, matrix

    gib = 2**30
    baseline = memory_in_subprocess("inputs")
    capa = memory_in_subprocess("capa")
    bare = memory_in_subprocess("matmul")
    print(f"resident after building the inputs: {baseline['resident_after_inputs'] / gib:.2f} GiB")
    print(
        f"peak RSS (fresh process each): building the inputs only {baseline['peak_rss'] / gib:.2f}"
        f" GiB; inputs + capa_matrix {capa['peak_rss'] / gib:.2f} GiB; "
        f"inputs + bare P @ P.T {bare['peak_rss'] / gib:.2f} GiB (target < {MEMORY_TARGET_GIB} GiB)"
    )
    print(
        f"allocated inside the call (tracemalloc peak): capa_matrix "
        f"{capa['traced_peak'] / 2**20:.0f} MiB, bare P @ P.T {bare['traced_peak'] / 2**20:.0f} MiB"
    )
    time_ok = best_ratio <= TIME_TARGET
    memory_ok = capa["peak_rss"] < MEMORY_TARGET_GIB * gib
    print(
        f"targets: time {'met' if time_ok else 'MISSED'}, memory {'met' if memory_ok else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
