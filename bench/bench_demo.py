"""`auditor demo` end to end against the floor litellm sets for the same calls, side by side.

The demo runs every call through litellm (the simulated models are a litellm custom provider),
so it cannot take less than a fresh process that only imports litellm and sends the demo's
calls: this script measures both, in fresh processes, interleaved over rounds:

- ``demo``: ``auditor demo`` in a fresh process (planning, the calls, storage in SQLite,
  analysis with the default resamples, the JSON and HTML reports, the signed manifest);
- ``floor``: a fresh process that imports litellm (``import`` seconds) and then sends exactly
  the demo's requests (``calls`` seconds) through ``litellm.acompletion`` to the same simulated
  provider, as many in flight as the demo allows, in a tight asyncio loop with nothing stored.

What is left, ``demo - floor``, is ours: planning, storing every reply, the analysis and the
reports. Target (issue 15): the demo <= 30 s on a quiet machine. The floor says how much of a
miss is litellm's on this machine rather than ours.

Run: ``python bench/bench_demo.py`` (``--rounds N``).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 30.0
ROOT = Path(__file__).resolve().parents[1]


def floor() -> None:
    """In a fresh process: seconds to import litellm, then to send the demo's requests (those
    of the audit with every answer as the simulated world gives it), as many in flight as the
    demo allows per limit key."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # as workers/llm.py does
    started = time.perf_counter()
    import litellm

    imported = time.perf_counter() - started
    litellm.suppress_debug_info = True  # as workers/llm.py does
    from bench_pipeline import all_requests, ceiling

    from auditor.cli.main import demo_spec
    from auditor.schemas.spec import parse_spec

    document = demo_spec()
    limits = parse_spec(document).call_limits().values()
    in_flight = min(limit.max_concurrency or 1 for limit in limits)
    requests = all_requests(document)
    sent = len(requests) / ceiling(document, requests, in_flight)
    print(f"{imported} {sent} {len(requests)} {in_flight}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--floor", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor:
        floor()
        return
    rows: list[dict[str, float]] = []
    for round_number in range(args.rounds):
        with tempfile.TemporaryDirectory() as scratch:
            started = time.perf_counter()
            demo = subprocess.run(
                [sys.executable, "-m", "auditor.cli", "demo", "--out", str(Path(scratch) / "out")],
                capture_output=True,
                text=True,
                cwd=scratch,
            )
            demo_wall = time.perf_counter() - started
        if demo.returncode != 0:
            raise SystemExit(f"auditor demo failed:\n{demo.stdout[-2000:]}\n{demo.stderr[-2000:]}")
        output = demo.stdout + demo.stderr
        reported = re.search(r"(\d[\d,]*) of (\d[\d,]*)\s+calls\s+\(100%\)", output)
        started = time.perf_counter()
        measured = subprocess.run(
            [sys.executable, __file__, "--floor"], capture_output=True, text=True, cwd=ROOT
        )
        floor_wall = time.perf_counter() - started
        if measured.returncode != 0:
            raise SystemExit(f"floor failed:\n{measured.stderr[-3000:]}")
        imported, sent, n_requests, in_flight = measured.stdout.split()[-4:]
        rows.append(
            {
                "demo": demo_wall,
                "import": float(imported),
                "calls": float(sent),
                "floor": float(imported) + float(sent),
            }
        )
        print(
            f"round {round_number + 1}: demo {demo_wall:.1f} s "
            f"({reported.group(1) if reported else '?'} calls made); floor: import litellm "
            f"{float(imported):.1f} s + {int(n_requests):,} calls {float(sent):.1f} s "
            f"({int(in_flight)} in flight) = {rows[-1]['floor']:.1f} s "
            f"(its process {floor_wall:.1f} s, with start-up and planning)"
        )
    best = min(rows, key=lambda row: row["demo"])
    ours = best["demo"] - best["floor"]
    print(
        f"\nbest demo {best['demo']:.1f} s against a floor of {best['floor']:.1f} s in its round "
        f"(import {best['import']:.1f} s, calls {best['calls']:.1f} s): "
        f"{best['demo'] / best['floor']:.2f}x; ours (planning, storage, analysis, reports) "
        f"{ours:.1f} s. Target: demo <= {TARGET_SECONDS:g} s"
        + ("" if best["demo"] <= TARGET_SECONDS else " (missed)")
    )


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
