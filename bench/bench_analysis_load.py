"""Analysis commands end to end against a bare ``orjson.loads`` of their input, side by side.

Input: 50 models x 2,000 items x 4 options (Dirichlet probabilities, 100,000 outputs) as a JSON
bundle; for `auditor analyze` the same plus 5 judges' verdicts on the other 45 models over 400
items (90,000 verdicts). Each round times, in this order and in fresh processes where a user
would have one:

- ``loads``: ``orjson.loads`` of the file's bytes in this process (the bare parse);
- ``loads process``: a fresh ``python -c "import orjson; orjson.loads(...)"`` (the parse plus
  interpreter start-up, what any command pays at least);
- ``stack floor``: a fresh process that imports what every analysis command on this stack needs
  (numpy, orjson, pydantic, typer, and scipy.special for analyze) and parses the input with the
  collector off: what a command pays before any work of its own;
- ``similarity``: ``auditor similarity BUNDLE`` (CAPA matrix as JSON on stdout);
- ``similarity parquet``: the same bundle as a Parquet directory;
- ``analyze``: ``auditor analyze BUNDLE --format json`` with the default 10,000 bootstrap
  resamples and permutations per judge.

Rounds are interleaved so machine load hits every variant alike; the best round of each is
compared (the least noisy estimate on a shared machine). Targets: each analysis command <= 3x
the bare ``orjson.loads`` of its input. Then, once, lm-sim end to end on the similarity input
(``json.load``, per-model arrays, ``CAPA().compute_k`` over all 1,225 pairs), the way a user of
the reference implementation computes the same matrix; target >= 100x.

Run: ``python bench/bench_analysis_load.py`` (``--rounds N``, ``--no-lmsim``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson

N_MODELS, N_ITEMS, N_OPTIONS = 50, 2_000, 4
N_JUDGES, N_JUDGED_ITEMS = 5, 400
SEED = 20250206
RATIO_TARGET = 3.0
LMSIM_TARGET = 100.0

LMSIM_SCRIPT = """
import json, sys, time
import numpy as np
from lmsim.metrics import CAPA
started = time.perf_counter()
with open(sys.argv[1]) as handle:
    document = json.load(handle)
gold = [item["gold"] for item in document["items"]]
column = {item["id"]: k for k, item in enumerate(document["items"])}
names = [model["name"] for model in document["models"]]
probs = {name: [None] * len(gold) for name in names}
for output in document["outputs"]:
    probs[output["model"]][column[output["item"]]] = np.array(output["probs"])
matrix = {}
for a in range(len(names)):
    for b in range(a + 1, len(names)):
        matrix[(a, b)] = CAPA().compute_k(probs[names[a]], probs[names[b]], gold)
print(time.perf_counter() - started)
"""


def build_documents(seed: int = SEED) -> tuple[dict, dict]:
    """The similarity bundle (outputs only) and the analysis bundle (plus verdicts)."""
    rng = np.random.default_rng(seed)
    items = [
        {
            "id": f"q{x}",
            "question": f"Question {x}?",
            "options": [f"option {k}" for k in range(N_OPTIONS)],
            "gold": int(rng.integers(N_OPTIONS)),
        }
        for x in range(N_ITEMS)
    ]
    models = [{"name": f"model-{m}", "family": f"family-{m % 10}"} for m in range(N_MODELS)]
    outputs = []
    for m in range(N_MODELS):
        probs = rng.dirichlet(np.full(N_OPTIONS, rng.uniform(0.2, 2.0)), size=N_ITEMS)
        probs /= probs.sum(axis=1, keepdims=True)
        outputs += [
            {"model": f"model-{m}", "item": f"q{x}", "probs": row}
            for x, row in enumerate(probs.tolist())
        ]
    verdicts = [
        {"judge": f"model-{j}", "candidate": f"model-{c}", "item": f"q{x}", "verdict": int(v)}
        for j in range(N_JUDGES)
        for c in range(N_JUDGES, N_MODELS)
        for x, v in enumerate(rng.integers(0, 2, size=N_JUDGED_ITEMS).tolist())
    ]
    similarity = {"schema_version": "1.0", "items": items, "models": models, "outputs": outputs}
    return similarity, {**similarity, "verdicts": verdicts}


def wall(command: list[str]) -> float:
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{completed.stderr}")
    return elapsed


def in_process_loads(path: Path) -> float:
    data = path.read_bytes()
    started = time.perf_counter()
    orjson.loads(data)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-lmsim", action="store_true", help="skip the lm-sim comparison")
    args = parser.parse_args()

    auditor = [sys.executable, "-m", "auditor.cli"]
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        similarity_doc, analysis_doc = build_documents()
        plain, judged = directory / "similarity.json", directory / "analysis.json"
        plain.write_bytes(orjson.dumps(similarity_doc))
        judged.write_bytes(orjson.dumps(analysis_doc))
        del similarity_doc, analysis_doc
        parquet = directory / "similarity.parquet"
        wall([*auditor, "convert", str(plain), str(parquet)])
        print(
            f"inputs: {N_MODELS} models x {N_ITEMS} items x {N_OPTIONS} options; "
            f"similarity.json {plain.stat().st_size / 2**20:.1f} MiB, analysis.json "
            f"{judged.stat().st_size / 2**20:.1f} MiB ({N_JUDGES} judges x "
            f"{N_MODELS - N_JUDGES} candidates x {N_JUDGED_ITEMS} items of verdicts)"
        )
        loads_process = "import orjson, sys; orjson.loads(open(sys.argv[1], 'rb').read())"
        # The least a command on this stack pays before any work of its own: start-up, the
        # imports every analysis command needs (typer builds its parameters with pydantic;
        # p-values need scipy.special), and the parse with the collector off (as we parse).
        stack_floor = (
            "import gc, sys, numpy, orjson, pydantic, typer{extra}; gc.disable(); "
            "orjson.loads(open(sys.argv[1], 'rb').read())"
        )
        variants = {
            "loads similarity.json": lambda: in_process_loads(plain),
            "loads analysis.json": lambda: in_process_loads(judged),
            "loads process similarity.json": lambda: wall(
                [sys.executable, "-c", loads_process, str(plain)]
            ),
            "stack floor similarity.json": lambda: wall(
                [sys.executable, "-c", stack_floor.format(extra=""), str(plain)]
            ),
            "stack floor analysis.json": lambda: wall(
                [sys.executable, "-c", stack_floor.format(extra=", scipy.special"), str(judged)]
            ),
            "similarity": lambda: wall([*auditor, "similarity", str(plain)]),
            "similarity parquet": lambda: wall([*auditor, "similarity", str(parquet)]),
            "analyze": lambda: wall(
                [
                    *auditor,
                    "analyze",
                    str(judged),
                    "--out",
                    str(directory / "out"),
                    "--format",
                    "json",
                ]
            ),
        }
        times: dict[str, list[float]] = {name: [] for name in variants}
        for round_number in range(args.rounds):
            for name, run in variants.items():
                times[name].append(run())
            print(
                f"round {round_number + 1}: "
                + ", ".join(f"{name} {values[-1]:.2f} s" for name, values in times.items())
            )
        best = {name: min(values) for name, values in times.items()}
        print("\nbest of each:")
        for name, value in best.items():
            print(f"  {name:32s} {value:7.3f} s")
        checks = [
            ("similarity", "loads similarity.json", "stack floor similarity.json"),
            ("similarity parquet", "loads similarity.json", "stack floor similarity.json"),
            ("analyze", "loads analysis.json", "stack floor analysis.json"),
        ]
        failed = False
        for command, baseline, floor in checks:
            ratio = best[command] / best[baseline]
            print(
                f"{command}: {ratio:.2f}x a bare orjson.loads of its input "
                f"({best[command] / best['loads process similarity.json']:.2f}x a fresh "
                f"process that only parses it); target <= {RATIO_TARGET:g}x. The stack's floor "
                f"is {best[floor] / best[baseline]:.2f}x; above it, ours: "
                f"{best[command] - best[floor]:.2f} s"
            )
            failed |= ratio > RATIO_TARGET
        if not args.no_lmsim:
            lmsim = float(
                subprocess.run(
                    [sys.executable, "-c", LMSIM_SCRIPT, str(plain)],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            )
            ratio = lmsim / best["similarity"]
            print(
                f"lm-sim end to end {lmsim:.1f} s (in-process, start-up not counted) vs "
                f"`auditor similarity` {best['similarity']:.2f} s: {ratio:,.0f}x "
                f"(target >= {LMSIM_TARGET:g}x; against the stack's floor alone: "
                f"{lmsim / best['stack floor similarity.json']:,.0f}x)"
            )
            failed |= ratio < LMSIM_TARGET
        if failed:
            raise SystemExit("a target was missed")


if __name__ == "__main__":
    main()
