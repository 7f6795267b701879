"""In-process audits on real storage (the reference runs of the pipeline tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from auditor.ecosystem import Ecosystem
from auditor.probes.affinity import analyze_affinity
from auditor.schemas.result import AffinityReport
from auditor.schemas.spec import parse_spec
from auditor.services.audits import audit_status, submit_audit
from auditor.storage.store import Store
from tests.support.settings import make_settings
from workers.local import run_local


def run_audit(url: str, spec: dict[str, Any], **settings: Any) -> tuple[Store, str]:
    store = Store(url)
    store.migrate()
    audit, created = submit_audit(store, parse_spec(spec), tenant="t1")
    assert created
    options = {
        "database_url": url,
        "batch_size": 64,
        "retry_base_delay": 0.001,
        "retry_max_delay": 0.01,
        **settings,
    }
    run_local(make_settings(**options), audit.id)
    return store, audit.id


def report_of(store: Store, audit_id: str) -> AffinityReport:
    document = store.get_result(audit_id)
    assert document is not None, audit_status(store, store.get_audit(audit_id)).model_dump()
    return AffinityReport.model_validate(document)


def ledger_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def world_report(spec: dict[str, Any]) -> AffinityReport:
    """Reference: the analysis of the simulated world's own bundle (no pipeline at all)."""
    parsed = parse_spec(spec)
    assert parsed.simulation is not None
    return analyze_affinity(Ecosystem(parsed.simulation).bundle(), parsed.analysis)


def assert_same_numbers(ours: AffinityReport, reference: AffinityReport) -> None:
    theirs = {(p.judge, p.candidate): p for p in reference.pairs}
    compared = 0
    for pair in ours.pairs:
        other = theirs[(pair.judge, pair.candidate)]
        assert pair.judgment_score == pytest.approx(other.judgment_score, abs=1e-12)
        assert pair.accuracy == pytest.approx(other.accuracy, abs=1e-12)
        assert pair.capa == pytest.approx(other.capa, abs=1e-9)
        assert (pair.n_valid, pair.n_invalid) == (other.n_valid, other.n_invalid)
        compared += 1
    assert compared == len(ours.pairs) > 0
    reference_judges = {j.judge: j for j in reference.judges}
    for judge in ours.judges:
        other = reference_judges[judge.judge]
        assert judge.partial_r == pytest.approx(other.partial_r, abs=1e-9)
        assert judge.p_value == pytest.approx(other.p_value, rel=1e-6)
        assert judge.flagged == other.flagged
