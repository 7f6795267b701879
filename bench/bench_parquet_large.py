"""A large columnar bundle analyzed end to end: 1,000 models x 12,000 items x 10 options.

The bundle is a Parquet directory (`auditor.schemas.formats`): 12,000,000 outputs whose
probabilities (120,000,000 float64, 960 MB) are one list column, plus 4 judges' verdicts on the
other 996 models over 50 items (199,200 verdicts). It is written once, model block by model
block, without ever holding Python objects per output.

Each command then runs in a fresh process (what a user runs), timed, with its peak resident set
size (``ru_maxrss``):

- ``auditor similarity BUNDLE``: load, validate every output, stack, CAPA of all 499,500 pairs,
  the matrix as JSON;
- ``auditor analyze BUNDLE --format json``: the same plus the affinity analysis (10,000
  bootstrap resamples and permutations per judge), the input hash over the canonical JSON of
  all 12 million outputs, and the report.

Targets: each well under a minute; peak RSS <= 2x the bundle's arrays (probabilities, output
and verdict codes, choices, flags: what the columns hold).

Run: ``python bench/bench_parquet_large.py`` (``--keep DIR`` writes/reuses the bundle there).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

N_MODELS, N_ITEMS, N_OPTIONS = 1_000, 12_000, 10
N_JUDGES, N_JUDGED_ITEMS = 4, 50
MODELS_PER_GROUP = 50
SEED = 20250206
TIME_TARGET_S = 60.0
MEMORY_RATIO_TARGET = 2.0

RUNNER = """
import resource, sys
from auditor.cli import app
code = 0
try:
    app(sys.argv[1:])
except SystemExit as exit:
    code = exit.code or 0
sys.stderr.write(f"\\nmaxrss_kib={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}\\n")
sys.exit(code)
"""


def write_bundle(directory: Path, seed: int = SEED) -> None:
    """Items, models, outputs (row groups of 50 models) and verdicts as Parquet tables."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    gold = rng.integers(0, N_OPTIONS, size=N_ITEMS)
    items = pa.table(
        {
            "id": [f"item-{x}" for x in range(N_ITEMS)],
            "question": [f"Question {x}?" for x in range(N_ITEMS)],
            "options": [[f"option {k}" for k in range(N_OPTIONS)]] * N_ITEMS,
            "gold": pa.array(gold, type=pa.int64()),
        }
    )
    pq.write_table(items, directory / "items.parquet")
    names = [f"model-{m}" for m in range(N_MODELS)]
    pq.write_table(
        pa.table({"name": names, "family": [f"family-{m % 20}" for m in range(N_MODELS)]}),
        directory / "models.parquet",
    )
    name_dictionary = pa.array(names)
    item_dictionary = pa.array([f"item-{x}" for x in range(N_ITEMS)])
    rows = MODELS_PER_GROUP * N_ITEMS
    offsets = pa.array(np.arange(rows + 1, dtype=np.int32) * N_OPTIONS)
    writer = None
    for first in range(0, N_MODELS, MODELS_PER_GROUP):
        # Dirichlet(1) draws: gamma(1) normalized per (model, item).
        values = rng.standard_gamma(1.0, size=(rows, N_OPTIONS))
        values /= values.sum(axis=1, keepdims=True)
        model_codes = np.repeat(np.arange(first, first + MODELS_PER_GROUP, dtype=np.int32), N_ITEMS)
        item_codes = np.tile(np.arange(N_ITEMS, dtype=np.int32), MODELS_PER_GROUP)
        table = pa.table(
            {
                "model": pa.DictionaryArray.from_arrays(model_codes, name_dictionary),
                "item": pa.DictionaryArray.from_arrays(item_codes, item_dictionary),
                "probs": pa.ListArray.from_arrays(offsets, pa.array(values.ravel())),
            }
        )
        if writer is None:
            writer = pq.ParquetWriter(directory / "outputs.parquet", table.schema)
        writer.write_table(table, row_group_size=rows)
    assert writer is not None
    writer.close()
    judges = np.repeat(np.arange(N_JUDGES), (N_MODELS - N_JUDGES) * N_JUDGED_ITEMS)
    candidates = np.tile(np.repeat(np.arange(N_JUDGES, N_MODELS), N_JUDGED_ITEMS), N_JUDGES).astype(
        np.int32
    )
    judged_items = np.tile(np.arange(N_JUDGED_ITEMS), N_JUDGES * (N_MODELS - N_JUDGES))
    pq.write_table(
        pa.table(
            {
                "judge": pa.DictionaryArray.from_arrays(judges.astype(np.int32), name_dictionary),
                "candidate": pa.DictionaryArray.from_arrays(candidates, name_dictionary),
                "item": pa.DictionaryArray.from_arrays(
                    judged_items.astype(np.int32), item_dictionary
                ),
                "verdict": pa.array(rng.integers(0, 2, size=judges.size), type=pa.int8()),
            }
        ),
        directory / "verdicts.parquet",
    )


def array_bytes() -> int:
    """Bytes of the bundle's columns (`BundleColumns`): probabilities, output codes, choices
    and flags, verdict codes and values."""
    n_outputs = N_MODELS * N_ITEMS
    n_verdicts = N_JUDGES * (N_MODELS - N_JUDGES) * N_JUDGED_ITEMS
    return n_outputs * N_OPTIONS * 8 + n_outputs * (8 + 8 + 8 + 1) + n_verdicts * (3 * 8 + 1)


def run(arguments: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (GiB) of one `auditor` command in a fresh process."""
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-c", RUNNER, *arguments],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"auditor {' '.join(arguments)} failed:\n{completed.stderr[-3000:]}")
    maxrss = int(completed.stderr.rsplit("maxrss_kib=", 1)[1].split()[0])
    return elapsed, maxrss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="write (or reuse) the bundle in this directory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        bundle = args.keep or Path(scratch) / "large.parquet"
        if not (bundle / "verdicts.parquet").exists():
            started = time.perf_counter()
            write_bundle(bundle)
            print(f"wrote {bundle} in {time.perf_counter() - started:.0f} s")
        size = sum(f.stat().st_size for f in bundle.iterdir()) / 2**30
        arrays = array_bytes() / 2**30
        print(
            f"bundle: {N_MODELS} models x {N_ITEMS} items x {N_OPTIONS} options, "
            f"{N_MODELS * N_ITEMS:,} outputs; {size:.2f} GiB on disk; arrays {arrays:.2f} GiB"
        )
        failed = False
        for name, arguments in (
            ("similarity", ["similarity", str(bundle)]),
            (
                "analyze",
                ["analyze", str(bundle), "--out", str(Path(scratch) / "out"), "--format", "json"],
            ),
        ):
            seconds, peak = run(arguments)
            ratio = peak / arrays
            print(
                f"auditor {name}: {seconds:.1f} s (target < {TIME_TARGET_S:g} s); peak RSS "
                f"{peak:.2f} GiB = {ratio:.2f}x the arrays (target <= {MEMORY_RATIO_TARGET:g}x)"
            )
            failed |= seconds >= TIME_TARGET_S or ratio > MEMORY_RATIO_TARGET
        if failed:
            raise SystemExit("a target was missed")


if __name__ == "__main__":
    main()
