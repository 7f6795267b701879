"""The evaluations service: a bundle stored whole, shown only to its tenant once complete, and
deleted only while no queued or running audit reads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.schemas.bundle import BundleError
from auditor.services import evaluations
from auditor.storage.store import Store
from tests.support.api import world_bundle


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'evaluations.sqlite'}")
    store.migrate()
    return store


def test_a_stored_bundle_is_counted_and_shown_to_its_tenant_only(store: Store) -> None:
    bundle = world_bundle(n_items=6)
    info = evaluations.store_bundle(store, bundle, tenant="acme", name="w")
    assert (info.n_items, info.n_models, info.n_outputs, info.n_verdicts) == (
        len(bundle.items),
        len(bundle.models),
        len(bundle.outputs),
        len(bundle.verdicts),
    )
    assert evaluations.visible_evaluation(store, info.id, tenant="acme").id == info.id
    with pytest.raises(evaluations.EvaluationNotFound):
        evaluations.visible_evaluation(store, info.id, tenant="globex")
    with pytest.raises(evaluations.EvaluationNotFound):
        evaluations.delete_evaluation(store, info.id, tenant="globex")


def test_an_invalid_bundle_is_refused_and_nothing_is_stored(store: Store) -> None:
    bundle = world_bundle(n_items=6)
    broken = bundle.model_copy(update={"outputs": [*bundle.outputs, bundle.outputs[0]]})
    with pytest.raises(BundleError):
        evaluations.store_bundle(store, broken, tenant="acme")
    assert store.list_evaluations(tenant="acme", limit=10, offset=0) == []


def test_an_evaluation_an_active_audit_reads_is_not_deleted(store: Store) -> None:
    info = evaluations.store_bundle(store, world_bundle(n_items=6), tenant="acme")
    audit, _ = store.create_audit(
        {"name": "a"}, tenant="acme", name="a", evaluation_id=info.id, budget_usd=None
    )
    with pytest.raises(evaluations.EvaluationInUse) as refused:
        evaluations.delete_evaluation(store, info.id, tenant="acme")
    assert refused.value.audit_ids == [audit.id]
    assert str(refused.value) == f"audits still running on this evaluation: {audit.id}"
    store.update_audit(audit.id, status="succeeded", stage="done")
    evaluations.delete_evaluation(store, info.id, tenant="acme")
    with pytest.raises(evaluations.EvaluationNotFound):
        evaluations.visible_evaluation(store, info.id, tenant="acme")
