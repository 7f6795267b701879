"""Rate-limit saturation: an audit against a provider that answers 429 above its limit.

The simulated provider serves at most RPM requests per minute (a token bucket refilled at
RPM/60 per second holding one second of it, kept in Redis so both worker processes meet the
same provider, as all clients of a real provider do); above it it answers 429 with a
``retry-after`` header. The audit runs through Celery on Redis with 2 real worker processes and
PostgreSQL, with its own shared limiter set to the same RPM (``burst_seconds: 1``).

Prints the achieved call rate as a share of the limit (from dispatch until every call is stored;
target >= 0.9) and the share of provider requests rejected with 429 (target <= 1%).

Run: python bench/bench_rate_limit.py [--rpm N] [--items N]  (needs Redis and PostgreSQL)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from celery import Celery

from auditor.schemas.spec import parse_spec
from auditor.services.audits import submit_audit
from auditor.services.planning import simulation_api_base
from auditor.storage.store import Store
from tests.support.services import (
    postgres_database,
    redis_databases,
    service_env,
    worker_process,
)

RATE_TARGET, REJECTED_TARGET = 0.9, 0.01


def spec_for(n_items: int, rpm: int, limit_url: str) -> dict[str, Any]:
    families = ("atlas", "boreal", "cygnus")
    judges = [f"{f}-1" for f in families]
    return {
        "name": f"rate-limit bench, {rpm} rpm",
        "simulation": {
            "seed": 3,
            "n_items": n_items,
            "judges": judges,
            "families": [{"name": f, "size": 4} for f in families],
        },
        "simulated_provider": {
            "latency": 0.05,
            "rpm": rpm,
            "burst_seconds": 1.0,
            "limit_url": limit_url,
        },
        "judges": [{"model": f"sim/{j}", "name": j} for j in judges],
        "candidates": [
            {"model": f"sim/{f}-{k}", "name": f"{f}-{k}"} for f in families for k in range(2, 5)
        ],
        "limits": {"sim": {"rpm": rpm, "burst_seconds": 1.0, "max_concurrency": 32}},
        "analysis": {"n_bootstrap": 0, "n_permutations": 0},
    }


def main() -> None:
    from workers.simulated import provider_counts

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rpm", type=int, default=1800)
    parser.add_argument("--items", type=int, default=40)
    args = parser.parse_args()
    with redis_databases() as (broker, backend), postgres_database() as database_url:
        document = spec_for(args.items, args.rpm, backend)
        spec = parse_spec(document)
        api_base = simulation_api_base(spec) or ""
        store = Store(database_url)
        store.migrate()
        env = service_env(database_url, broker, backend)
        with worker_process(env, concurrency=2) as worker:
            audit, _ = submit_audit(store, spec, tenant="bench")
            started = time.perf_counter()
            Celery(broker=broker).send_task("auditor.start", args=[audit.id])
            calls_done = None
            while True:
                row = store.get_audit(audit.id)
                assert row is not None
                counts = store.progress(audit.id)
                total = sum(c["done"] + c["failed"] + c["pending"] for c in counts.values())
                stored = sum(c["done"] + c["failed"] for c in counts.values())
                if calls_done is None and total and stored >= total and "judge" in counts:
                    calls_done = time.perf_counter() - started
                    n_calls = total
                if row.status in ("succeeded", "failed"):
                    if row.status != "succeeded":
                        raise SystemExit(f"audit failed: {row.error}\n{worker.log()[-3000:]}")
                    break
                time.sleep(0.05)
        assert calls_done is not None
        served = provider_counts(backend, api_base)
    rate = n_calls / calls_done
    share = rate / (args.rpm / 60)
    attempts = served["served"] + served["rejected"]
    rejected = served["rejected"] / attempts if attempts else 0.0
    print(
        f"{n_calls} calls through 2 worker processes against a {args.rpm} rpm provider "
        f"({args.rpm / 60:.1f} calls/s): {calls_done:.1f} s, {rate:.1f} calls/s = {share:.2f} of "
        f"the limit (target >= {RATE_TARGET}); provider served {served['served']}, rejected "
        f"{served['rejected']} with 429 = {rejected:.2%} (target <= {REJECTED_TARGET:.0%})"
    )
    if share < RATE_TARGET or rejected > REJECTED_TARGET:
        raise SystemExit("a target was missed")


if __name__ == "__main__":
    main()
