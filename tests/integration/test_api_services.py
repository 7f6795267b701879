"""Shared test helpers."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from auditor.services.evaluations import StreamImporter
from auditor.services.keys import create_key
from auditor.storage.store import Store
from tests.support.api import (
    JUDGES,
    PROVIDER_SECRET,
    SIMULATION_SPEC,
    calls_done,
    evaluation_spec,
    jsonl,
    metric_value,
    poll_audit,
    world_bundle,
)
from tests.support.services import (
    ServiceProcess,
    free_port,
    postgres_database,
    redis_databases,
    service_env,
    worker_process,
)


@pytest.mark.services
def test_streamed_evaluation_round_trips_on_postgres() -> None:
    """PostgreSQL takes the COPY path; what comes back is what was uploaded."""
    bundle = world_bundle()
    with postgres_database() as url:
        store = Store(url)
        store.migrate()
        importer = StreamImporter(store, tenant="acme", name="pg")
        importer.feed(jsonl(bundle))
        info = importer.finish()
        assert store.get_bundle(info.id, tenant="acme") == bundle
        assert (info.n_outputs, info.n_verdicts) == (120, 240)
        store.engine.dispose()


@pytest.mark.services
def test_whole_flow_over_http_with_a_worker_on_redis_and_postgres() -> None:
    with postgres_database() as database_url, redis_databases() as (broker, backend):
        env = service_env(
            database_url,
            broker,
            backend,
            OPENAI_API_KEY=PROVIDER_SECRET,
            AUDITOR_BATCH_SIZE="16",  # small batches: a cancel lands between them
        )
        setup = Store(database_url)
        setup.migrate()
        key = create_key(setup, tenant="acme")[1]  # `auditor keys create` is tested elsewhere
        setup.engine.dispose()
        port = free_port()
        server = ServiceProcess(
            [
                sys.executable,
                "-m",
                "auditor.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env,
            ready_marker="Application startup complete",
            name="api",
        )
        worker = worker_process(env)
        seen: list[httpx.Response] = []
        with (
            contextlib.ExitStack() as processes,
            httpx.Client(
                base_url=f"http://127.0.0.1:{port}",
                headers={"Authorization": f"Bearer {key}"},
                timeout=30,
                event_hooks={"response": [lambda r: r.read()]},
            ) as client,
        ):
            processes.callback(worker.stop)
            processes.callback(server.stop)
            with ThreadPoolExecutor(2) as pool:  # both start at once (the worker takes longest)
                for started in [pool.submit(worker.start), pool.submit(server.start)]:
                    started.result()
            seen.append(ready := client.get("/readyz"))
            assert ready.status_code == 200, ready.text

            # Submit an evaluation (streamed JSONL, generated as it is sent).
            body = jsonl(world_bundle())
            lines = iter(body.splitlines(keepends=True))
            seen.append(uploaded := client.post("/v1/evaluations:stream", content=lines))
            assert uploaded.status_code == 201, uploaded.text
            evaluation_id = uploaded.json()["id"]
            seen.append(client.get(f"/v1/evaluations/{evaluation_id}"))
            assert seen[-1].json()["n_verdicts"] == 240

            # Start audits: a simulated world (models called through the worker) and the
            # stored evaluation (everything known: analyzed without calls).
            seen.append(simulated := client.post("/v1/audits", json=SIMULATION_SPEC))
            assert simulated.status_code == 202, simulated.text
            seen.append(stored := client.post("/v1/audits", json=evaluation_spec(evaluation_id)))
            assert stored.status_code == 202, stored.text
            assert client.get(simulated.headers["location"]).json()["id"] == simulated.json()["id"]

            finished = poll_audit(client, simulated.json()["id"], seen, timeout=120)
            assert finished["status"] == "succeeded", finished
            assert finished["progress"]["judge"] == {"done": 2 * 5 * 20, "failed": 0, "pending": 0}
            assert finished["progress"]["mcq"]["done"] == 6 * 20
            assert (
                poll_audit(client, stored.json()["id"], seen, timeout=60)["status"] == "succeeded"
            )

            for audit_id in (simulated.json()["id"], stored.json()["id"]):
                seen.append(result := client.get(f"/v1/audits/{audit_id}/result"))
                assert result.status_code == 200
                assert [j["judge"] for j in result.json()["judges"]] == JUDGES
                seen.append(report := client.get(f"/v1/audits/{audit_id}/report?format=md"))
                assert report.status_code == 200 and "atlas-1" in report.text
                seen.append(cancel := client.post(f"/v1/audits/{audit_id}/cancel"))
                assert cancel.status_code == 409
            # Cancel a running audit: batches in flight finish, the workers start no more.
            slow = {
                **SIMULATION_SPEC,
                "name": "slow",
                "simulation": {**SIMULATION_SPEC["simulation"], "seed": 9, "n_items": 60},
                "simulated_provider": {"latency": 0.1},
                "limits": {"sim": {"max_concurrency": 4}},
            }
            seen.append(running := client.post("/v1/audits", json=slow))
            running_url = running.headers["location"]
            deadline = time.monotonic() + 60
            while calls_done(client.get(running_url).json()) == 0:
                assert time.monotonic() < deadline, "the slow audit never started"
                time.sleep(0.1)
            seen.append(cancelled := client.post(f"{running_url}/cancel"))
            assert cancelled.status_code == 200, cancelled.text
            assert cancelled.json()["status"] == "cancelled"
            counts = [calls_done(cancelled.json())]
            while len(counts) < 3 or counts[-1] != counts[-3]:  # until still for a second
                time.sleep(0.5)
                seen.append(polled := client.get(running_url))
                counts.append(calls_done(polled.json()))
                assert time.monotonic() < deadline + 30, counts
            final = polled.json()
            assert (final["status"], final["stage"]) == ("cancelled", "done")
            assert sum(p["pending"] for p in final["progress"].values()) > 0, final["progress"]
            # Judges grade answers as they arrive (the pipeline streams), so some verdict calls
            # may be planned or even done before the cancel; far from all of them ran.
            judged = final["progress"].get("judge", {"done": 0, "pending": 0})
            assert judged["done"] < 2 * 5 * 60, judged

            seen.append(client.get("/v1/audits"))
            assert len(seen[-1].json()["items"]) == 3

            seen.append(metrics := client.get("/metrics"))
            assert metric_value(metrics.text, "auditor_audits", status="succeeded") == 2
            assert (
                metric_value(metrics.text, "auditor_model_calls", stage="judge", status="done")
                == 200 + judged["done"]
            )
        for response in seen:
            assert PROVIDER_SECRET.encode() not in response.content
        assert PROVIDER_SECRET not in server.log()
        assert PROVIDER_SECRET not in worker.log()
        assert os.environ.get("OPENAI_API_KEY") != PROVIDER_SECRET
