"""Verdict throughput through the full pipeline (Celery on Redis, real worker processes,
PostgreSQL storage) with the simulated provider, as a ratio to litellm's own ceiling measured in
the same run: a tight asyncio loop of `litellm.acompletion` on the same provider and requests.

(a) zero latency: pipeline calls/s over the ceiling's calls/s (target >= 0.8);
(b) 200 ms latency with 256 calls in flight: pipeline calls/s over min(256 / 0.2 s, ceiling)
    (target >= 0.8).

Run: python bench/bench_pipeline.py [--items N]  (needs Redis and PostgreSQL on 127.0.0.1)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from celery import Celery

from auditor.ecosystem import Ecosystem
from auditor.schemas.spec import parse_spec
from auditor.services.audits import submit_audit
from auditor.services.planning import collect_calls, judge_calls, simulation_api_base
from auditor.storage.store import Store
from tests.support.services import (
    postgres_database,
    redis_databases,
    service_env,
    worker_process,
)

IN_FLIGHT = 256
BATCH = int(os.environ.get("BENCH_BATCH", "256"))
LATENCY = 0.2


def spec_for(n_items: int, latency: float, seed: int) -> dict[str, Any]:
    families = ("atlas", "boreal", "cygnus")
    judges = [f"{f}-1" for f in families]
    return {
        "name": f"throughput bench, latency {latency}",
        "simulation": {
            "seed": seed,
            "n_items": n_items,
            "judges": judges,
            "families": [{"name": f, "size": 4} for f in families],
        },
        "simulated_provider": {"latency": latency},
        "judges": [{"model": f"sim/{j}", "name": j} for j in judges],
        "candidates": [
            {"model": f"sim/{f}-{k}", "name": f"{f}-{k}"} for f in families for k in range(2, 5)
        ],
        "limits": {"sim": {"max_concurrency": IN_FLIGHT // 2}},
        "analysis": {"n_bootstrap": 0, "n_permutations": 0},
    }


def all_requests(spec_document: dict[str, Any]) -> list[dict[str, Any]]:
    """Exactly the calls the audit makes, for the ceiling loop."""
    spec = parse_spec(spec_document)
    assert spec.simulation is not None
    world = Ecosystem(spec.simulation)
    from auditor.services.planning import base_bundle

    base = base_bundle(spec, None)
    calls = collect_calls(spec, "bench", base)
    answers = {
        (m, item.id): world.answer_text(m, item.id)
        for m in world.model_names
        for item in base.items
    }
    calls += judge_calls(spec, "bench", base, answers)
    return [c.request for c in calls]


def ceiling(
    spec_document: dict[str, Any], requests: list[dict[str, Any]], in_flight: int = IN_FLIGHT
) -> float:
    """litellm's own rate: a tight asyncio loop of acompletion, ``in_flight`` at a time."""
    import litellm

    from workers.simulated import register_world

    spec = parse_spec(spec_document)
    assert spec.simulation is not None
    register_world(simulation_api_base(spec) or "", spec.simulation, spec.simulated_provider)

    async def run() -> float:
        semaphore = asyncio.Semaphore(in_flight)

        async def one(request: dict[str, Any]) -> None:
            async with semaphore:
                await litellm.acompletion(**request, num_retries=0)

        started = time.perf_counter()
        await asyncio.gather(*(one(r) for r in requests))
        return len(requests) / (time.perf_counter() - started)

    return asyncio.run(run())


def pipeline(spec_document: dict[str, Any], n_calls: int) -> tuple[float, float]:
    """Calls/s from submission until every call is stored, and the total audit time."""
    with redis_databases() as (broker, backend), postgres_database() as database_url:
        store = Store(database_url)
        store.migrate()
        env = service_env(database_url, broker, backend, AUDITOR_BATCH_SIZE=str(BATCH))
        client = Celery(broker=broker)
        with worker_process(env, concurrency=2) as worker:
            audit, _ = submit_audit(store, parse_spec(spec_document), tenant="bench")
            started = time.perf_counter()
            client.send_task("auditor.start", args=[audit.id])
            calls_done = None
            while True:
                row = store.get_audit(audit.id)
                assert row is not None
                if calls_done is None:
                    counts = store.progress(audit.id)
                    stored = sum(c["done"] + c["failed"] for c in counts.values())
                    if stored >= n_calls:
                        calls_done = time.perf_counter() - started
                if row.status in ("succeeded", "failed"):
                    if row.status != "succeeded":
                        raise RuntimeError(f"audit failed: {row.error}\n{worker.log()[-3000:]}")
                    break
                time.sleep(0.05)
            total = time.perf_counter() - started
        assert calls_done is not None
        return n_calls / calls_done, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=150)
    args = parser.parse_args()
    print(
        f"machine: {os.cpu_count()} cores; worker: 2 processes; batch {BATCH} calls, "
        f"{IN_FLIGHT // 2} in flight per process; storage PostgreSQL; broker Redis"
    )
    for label, latency, seed in (("(a) zero latency", 0.0, 1), ("(b) 200 ms latency", LATENCY, 2)):
        spec = spec_for(args.items, latency, seed)
        requests = all_requests(spec)
        # The ceiling runs on a fresh world seed so no call is cached between the two measures.
        ceiling_rate = ceiling(
            spec_for(args.items, latency, seed + 100),
            all_requests(spec_for(args.items, latency, seed + 100)),
        )
        rate, total = pipeline(spec, len(requests))
        reference = ceiling_rate if latency == 0 else min(IN_FLIGHT / LATENCY, ceiling_rate)
        print(
            f"{label}: {len(requests)} calls; litellm ceiling {ceiling_rate:.0f} calls/s; "
            f"pipeline {rate:.0f} calls/s (audit incl. analysis {total:.1f} s); "
            f"ratio {rate / reference:.2f} (reference {reference:.0f} calls/s; target >= 0.8)"
        )


if __name__ == "__main__":
    main()
