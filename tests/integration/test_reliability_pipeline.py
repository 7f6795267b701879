"""A reliability audit end to end through a real `auditor worker` (Celery on Redis) and
PostgreSQL: a grader model and K prompt templates per role, in a simulated world with planted
avoidance, a judge whose false approval rises on easy items and prompt-sensitive models.

References: the world's planted three-way outcome of every answer (`Ecosystem.outcome`), which
the grader must read back from its replies, and the planted sensitivities (models without one
never flip across templates).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery

from auditor.ecosystem import Ecosystem
from auditor.schemas.result import AuditResult
from auditor.schemas.spec import parse_spec
from auditor.services.audits import TERMINAL_STATUSES, audit_status, submit_audit
from auditor.storage.store import Store
from tests.support.pipeline import report_of
from tests.support.services import (
    postgres_database,
    redis_databases,
    service_env,
    worker_process,
)
from tests.support.specs import small_spec

pytestmark = pytest.mark.services

N_ITEMS = 12
MCQ_VARIANTS = ["mcq-terse", "mcq-formal"]  # K = 3 MCQ templates with the primary
JUDGE_VARIANTS = ["judge-strict"]  # K = 2 judge templates
SENSITIVE = {"atlas-2": 3.0, "boreal-1": 3.0}  # a candidate and a judge


def reliability_spec() -> dict[str, Any]:
    spec = small_spec(
        seed=4,
        n_items=N_ITEMS,
        grader={"model": "sim/cygnus-3", "name": "grader"},
        prompt_variants={"mcq": MCQ_VARIANTS, "judge": JUDGE_VARIANTS},
    )
    spec["simulation"].update(
        avoidance=0.4,
        judge_false_approval_slope={"atlas-1": 1.5},
        model_prompt_sensitivity=SENSITIVE,
    )
    return spec


@pytest.fixture
def deployment() -> Iterator[tuple[Store, dict[str, str], Celery]]:
    with redis_databases() as (broker, backend), postgres_database() as database_url:
        store = Store(database_url)
        store.migrate()
        env = service_env(database_url, broker, backend, AUDITOR_BATCH_SIZE="32")
        client = Celery(broker=broker)
        client.conf.broker_connection_retry_on_startup = True
        yield store, env, client


def _wait(store: Store, audit_id: str, timeout: float = 540.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = audit_status(store, store.get_audit(audit_id)).model_dump()
        if status["status"] in TERMINAL_STATUSES:
            return status
        time.sleep(0.5)
    raise AssertionError(f"audit {audit_id} not finished in {timeout} s: {status}")


def test_reliability_audit_with_a_grader_and_k_templates_through_a_worker(
    deployment: tuple[Store, dict[str, str], Celery],
) -> None:
    store, env, client = deployment
    document = reliability_spec()
    spec = parse_spec(document)
    with worker_process(env) as worker:
        audit, _ = submit_audit(store, spec, tenant="t1")
        client.send_task("auditor.start", args=[audit.id])
        status = _wait(store, audit.id)
    assert status["status"] == "succeeded", (
        status["error"],
        status["failures"],
        worker.log()[-3000:],
    )
    models = [m.display_name for m in spec.all_models]  # 3 judges + 6 candidates
    n_judge = 3 * (len(models) - 1) * N_ITEMS  # each judge grades every other model
    progress = {k: (v["done"], v["failed"], v["pending"]) for k, v in status["progress"].items()}
    assert progress["mcq"] == (len(models) * N_ITEMS * (1 + len(MCQ_VARIANTS)), 0, 0)
    assert progress["answer"] == (len(models) * N_ITEMS, 0, 0)
    # grades and verdicts of identical answers to an item share one call (its key hashes the
    # request): at most one call per answer (per template)
    assert 0 < progress["grade"][0] <= len(models) * N_ITEMS and progress["grade"][1:] == (0, 0)
    assert 0 < progress["judge"][0] <= n_judge * (1 + len(JUDGE_VARIANTS))
    assert progress["judge"][1:] == (0, 0)
    report = report_of(store, audit.id)
    assert isinstance(report, AuditResult)
    assert spec.simulation is not None
    world = Ecosystem(spec.simulation)

    # Three-way outcomes: the grader's (it outranks the planted truth the simulated audit also
    # carries), read back from its replies, equal the world's planted outcome of every answer.
    rel = report.probe_results["reliability"]
    assert rel.truth_source == "grader" and rel.difficulty_source == "item"  # type: ignore[attr-defined]
    rows = {row.model: row for row in rel.models}  # type: ignore[attr-defined]
    assert set(rows) == set(models)
    for model in models:
        planted = Counter(world.outcome(model, item.id) for item in world.items)
        overall = rows[model].overall
        assert (overall.correct.k, overall.avoidant.k, overall.incorrect.k) == (
            planted["correct"],
            planted["avoidant"],
            planted["incorrect"],
        ), model
    assert sum(rows[m].overall.avoidant.k for m in models) > 0
    assert len(rel.bins) == 5 and rel.difficulty_bins == 5  # type: ignore[attr-defined]
    (note,) = [n for n in report.coverage.notes if n.startswith("Grader grader replies")]
    graded = len(models) * N_ITEMS  # a reply per answer (shared calls stand for each answer)
    assert note.startswith(f"Grader grader replies: {graded} of {graded} read"), note

    sup = report.probe_results["supervision"]
    assert sup.truth_source == "grader"  # type: ignore[attr-defined]
    assert [j.judge for j in sup.judges] == ["atlas-1", "boreal-1", "cygnus-1"]  # type: ignore[attr-defined]

    # K templates per role; only the planted prompt-sensitive model and judge flip.
    stability = report.probe_results["prompt_stability"]
    by_row = {(r.role, r.name): r for r in stability.rows}  # type: ignore[attr-defined]
    assert {name for role, name in by_row if role == "model"} == set(models)
    assert {name for role, name in by_row if role == "judge"} == {"atlas-1", "boreal-1", "cygnus-1"}
    for (role, name), row in by_row.items():
        expected = ["primary", *sorted(MCQ_VARIANTS if role == "model" else JUDGE_VARIANTS)]
        assert row.templates == expected, (role, name)
        assert row.n_units > 0
        if name not in SENSITIVE:
            assert row.flips.k == 0, (role, name)
    assert by_row[("model", "atlas-2")].flips.k > 0 and by_row[("judge", "boreal-1")].flips.k > 0
    for judge in ("atlas-1", "boreal-1", "cygnus-1"):
        row = by_row[("judge", judge)]
        assert list(row.affinity_partial_r) == ["primary", "judge-strict"]
        assert row.affinity_items == N_ITEMS
    # the insensitive judges' verdicts are the same under both templates, and so their r
    for judge in ("atlas-1", "cygnus-1"):
        values = set(by_row[("judge", judge)].affinity_partial_r.values())
        assert len(values) == 1, (judge, values)
