"""What the audits service refuses before anything is stored or sent, and its rules for a
retried create and for cancelling: one home for the rules the API's audits and schedules
endpoints, `auditor run` and the scheduler apply."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.schemas.spec import AuditSpec
from auditor.services import audits, evaluations
from auditor.storage.store import Store
from tests.support.api import JUDGES, SIMULATION_SPEC, evaluation_spec, world_bundle


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'admission.sqlite'}")
    store.migrate()
    return store


def _spec(document: dict) -> AuditSpec:
    return AuditSpec.model_validate(document)


def test_an_evaluation_is_admitted_only_for_its_own_tenant(store: Store) -> None:
    info = evaluations.store_bundle(store, world_bundle(n_items=6), tenant="acme", name="w")
    spec = _spec(evaluation_spec(info.id))
    assert audits.admission_problems(store, spec, tenant="acme") == []
    refused = audits.admission_problems(store, spec, tenant="globex", at="spec")
    assert [(p.path, p.message) for p in refused] == [
        ("spec.evaluation_id", f"no evaluation {info.id!r}")
    ]
    with pytest.raises(KeyError, match="evaluation_id"):
        audits.submit_audit(store, spec, tenant="globex")
    assert store.list_audits(tenant="globex", limit=10) == []


def test_a_simulation_whose_design_cannot_answer_is_refused_with_its_fields(
    store: Store,
) -> None:
    # Each judge grades 5 candidates; the affinity test is asked to need 6.
    spec = _spec(
        {**SIMULATION_SPEC, "analysis": {**SIMULATION_SPEC["analysis"], "min_candidates": 6}}
    )
    problems = audits.admission_problems(store, spec, tenant="acme", at="spec")
    assert [p.path for p in problems] == ["spec.judges"] * len(JUDGES)
    assert all("min_candidates" in p.message for p in problems)
    assert audits.admission_problems(store, _spec(SIMULATION_SPEC), tenant="acme") == []


def test_the_api_policy_applies_only_when_allowed_bases_are_given(store: Store) -> None:
    document = {
        **SIMULATION_SPEC,
        "judges": [
            {"model": f"sim/{j}", "name": j, "api_base": "http://10.0.0.7:8000/v1"} for j in JUDGES
        ],
    }
    spec = _spec(document)
    assert audits.admission_problems(store, spec, tenant="acme") == []  # the operator's spec
    refused = audits.admission_problems(store, spec, tenant="acme", allowed_api_bases=())
    assert [p.path for p in refused] == [f"judges[{k}].api_base" for k in range(len(JUDGES))]


def test_a_reused_idempotency_key_returns_its_audit_or_names_it(store: Store) -> None:
    spec = _spec(SIMULATION_SPEC)
    first, created = audits.submit_audit(store, spec, tenant="acme", idempotency_key="k1")
    again, created_again = audits.submit_audit(store, spec, tenant="acme", idempotency_key="k1")
    assert (created, created_again, again.id) == (True, False, first.id)
    assert audits.needs_start(first, True)
    assert audits.needs_start(again, False)  # still queued at stage "new": the start may be lost
    other = spec.model_copy(update={"name": "another name"})
    with pytest.raises(audits.IdempotencyKeyReused, match=first.id):
        audits.submit_audit(store, other, tenant="acme", idempotency_key="k1")
    assert [a.id for a in store.list_audits(tenant="acme", limit=10)] == [first.id]


def test_cancel_is_for_the_tenants_active_audits_only(store: Store) -> None:
    audit, _ = audits.submit_audit(store, _spec(SIMULATION_SPEC), tenant="acme")
    with pytest.raises(audits.AuditNotFound):
        audits.cancel_audit(store, audit.id, tenant="globex")
    with pytest.raises(audits.AuditNotFound):
        audits.visible_audit(store, audit.id, tenant="globex")
    cancelled = audits.cancel_audit(store, audit.id, tenant="acme")
    assert cancelled.status == "cancelled"
    assert not audits.needs_start(cancelled, False)
    with pytest.raises(audits.AuditNotActive, match="already cancelled"):
        audits.cancel_audit(store, audit.id, tenant="acme")
    assert audits.visible_audit(store, audit.id, tenant="acme").status == "cancelled"
