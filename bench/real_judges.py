"""Verdicts from a real chat model: an audit against an OpenAI-compatible server (llama.cpp's,
vLLM's, Ollama's /v1) and the share of judge replies the service could read, by rule.

The model judges and answers; the candidates are the same server sampled at temperature 0.8
with different seeds (distinct answers to judge), so one small model is enough. Every call goes
through ``auditor run`` (the service's one litellm seam, in process, SQLite), and the stored
judge calls are read back: how many verdicts each rule read (``logprobs``, ``bare``,
``labelled``, ``leading``, ``trailing``), how many replies were unreadable, and a few examples.

Run (see the README, "Against a real local model", for starting llama.cpp's server)::

    python bench/real_judges.py --api-base http://127.0.0.1:8081/v1 --out real-judges

A script that prints figures, not a test: a real model's replies are not reproducible.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from auditor.storage.store import Store

ITEMS = [
    ("What is the capital of France?", ["Paris", "Lyon", "Nice", "Lille"], 0),
    ("What is 2 + 2?", ["3", "4", "5", "22"], 1),
    ("Which planet is called the red planet?", ["Venus", "Mars", "Jupiter", "Moon"], 1),
    ("What colour is a clear daytime sky?", ["Green", "Red", "Blue", "Black"], 2),
    ("How many legs has a spider?", ["Six", "Eight", "Ten", "Four"], 1),
    ("What is the largest ocean on Earth?", ["Atlantic", "Indian", "Arctic", "Pacific"], 3),
    ("What gas do plants take in from the air?", ["Oxygen", "Carbon dioxide", "Helium", "Neon"], 1),
    ("How many days are in a week?", ["Five", "Six", "Seven", "Eight"], 2),
    ("What is the freezing point of water in Celsius?", ["0", "10", "32", "100"], 0),
    ("Which animal is known as the king of the jungle?", ["Tiger", "Lion", "Bear", "Wolf"], 1),
    ("What is the capital of Japan?", ["Kyoto", "Osaka", "Tokyo", "Nagoya"], 2),
    ("How many continents are there?", ["Five", "Six", "Seven", "Eight"], 2),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api-base", required=True, help="the server's /v1 URL")
    parser.add_argument("--model", default="openai/local", help="litellm model string")
    parser.add_argument("--candidates", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path("real-judges"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    names = ["judge", *(f"cand-{i}" for i in range(1, args.candidates + 1))]
    bundle = {
        "items": [
            {"id": f"q{i:02d}", "question": q, "options": options, "gold": gold}
            for i, (q, options, gold) in enumerate(ITEMS, 1)
        ],
        "models": [],
    }
    (args.out / "bundle.json").write_text(json.dumps(bundle))

    def model(name: str, index: int) -> dict[str, object]:
        spec: dict[str, object] = {"model": args.model, "name": name, "api_base": args.api_base}
        if index:  # candidates: sampled, each with its own seed, so their answers differ
            spec["params"] = {"temperature": 0.8, "seed": index}
        return spec

    spec = {
        "name": "real chat judge",
        "bundle": str((args.out / "bundle.json").resolve()),
        "judges": [model("judge", 0)],
        "candidates": [model(name, i) for i, name in enumerate(names[1:], 1)],
        "sampling": {"answer_max_tokens": 48},
        "analysis": {"n_bootstrap": 50, "n_permutations": 50, "min_candidates": 4},
    }
    (args.out / "spec.json").write_text(json.dumps(spec, indent=1))
    database = f"sqlite:///{(args.out / 'audit.sqlite').resolve()}"
    run = subprocess.run(
        ["auditor", "run", str(args.out / "spec.json"), "--db", database, "--out", str(args.out)],
        check=False,
    )
    store = Store(database)
    [audit] = store.list_audits(tenant="default", limit=1, offset=0)
    rows = list(store.calls_of(audit.id, stage="judge"))
    rules = Counter((row.parsed or {}).get("rule") for row in rows if row.status == "done")
    failed = sum(row.status != "done" for row in rows)
    answered = sum(rules.values())
    read = answered - rules.get(None, 0)
    print(f"audit {audit.id}: {audit.status} (auditor run exit {run.returncode})")
    print(f"judge calls: {len(rows)} ({failed} failed); replies: {answered}")
    print(f"verdicts read: {read} of {answered} ({read / max(answered, 1):.0%})")
    for rule, count in rules.most_common():
        print(f"  {rule or 'unreadable'}: {count}")
    for row in rows[:8]:
        parsed = row.parsed or {}
        print(f"  e.g. {row.text!r} -> {parsed.get('verdict')} ({parsed.get('rule')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
