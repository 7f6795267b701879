"""Streamed stages: does an audit keep its calls flowing from start to end, with no barrier
between answers and verdicts and no idle tail? With 200 ms simulated latency, an in-process
audit (`workers.local`, the path of `auditor run`/`auditor demo`: the same pipeline service a
deployment runs) is timed from its first call to its last stored reply, and compared with the
time its calls would take at the throughput measured in the same run (the calls stored per
second in the steady middle of the audit, 10%-90% of calls).

    ratio = wall / (total calls / steady throughput)        target <= 1.1

Run: python bench/bench_streaming.py [--items N] [--latency S]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from auditor.schemas.spec import parse_spec
from auditor.services.audits import submit_audit
from auditor.storage.store import Store
from tests.support.settings import make_settings


def spec_for(n_items: int, latency: float) -> dict[str, Any]:
    families = ("atlas", "boreal", "cygnus")
    judges = [f"{f}-1" for f in families]
    return {
        "name": f"streaming bench, latency {latency}",
        "simulation": {
            "seed": 5,
            "n_items": n_items,
            "judges": judges,
            "families": [{"name": f, "size": 3} for f in families],
        },
        "simulated_provider": {"latency": latency},
        "judges": [{"model": f"sim/{j}", "name": j} for j in judges],
        "candidates": [
            {"model": f"sim/{f}-{k}", "name": f"{f}-{k}"} for f in families for k in range(2, 4)
        ],
        "limits": {"sim": {"max_concurrency": 32}},
        "analysis": {"n_bootstrap": 0, "n_permutations": 0},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=60)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    from workers.local import BATCH_THREADS, run_local

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.sqlite'}"
        store = Store(url)
        store.migrate()
        audit, _ = submit_audit(store, parse_spec(spec_for(args.items, args.latency)), tenant="b")
        started = time.perf_counter()
        run_local(make_settings(database_url=url, batch_size=args.batch), audit.id)
        total = time.perf_counter() - started
        row = store.get_audit(audit.id)
        assert row is not None and row.status == "succeeded", row and row.error
        times = sorted(
            call.updated_at.timestamp() for call in store.calls_of(audit.id, status="done")
        )
        assert row.started_at is not None
        first = row.started_at.timestamp()
    n = len(times)
    low, high = times[n // 10], times[(9 * n) // 10]
    steady = ((9 * n) // 10 - n // 10) / (high - low)
    wall = times[-1] - first
    ideal = n / steady
    kinds = {k: v["done"] for k, v in store.progress(audit.id).items()}
    print(
        f"{n} calls {kinds}, {args.latency * 1000:.0f} ms latency, {BATCH_THREADS} batches "
        f"of {args.batch} at once, 32 calls in flight in all; audit incl. analysis "
        f"{total:.1f} s"
    )
    print(
        f"calls: first planned to last stored {wall:.1f} s; steady throughput "
        f"{steady:.0f} calls/s -> {ideal:.1f} s; ratio {wall / ideal:.2f} (target <= 1.1)"
    )


if __name__ == "__main__":
    main()
