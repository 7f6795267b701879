"""`auditor.services.analysis`: the one place the clock and the installed versions enter a
result (the probes' analysis is pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import metadata

from auditor.ecosystem import Ecosystem, EcosystemConfig
from auditor.probes.analysis import analyze
from auditor.schemas.result import SOFTWARE_PACKAGES, AnalysisSettings
from auditor.services.analysis import analyze_now

FAST = AnalysisSettings(n_bootstrap=100, n_permutations=100, seed=3)


def test_analyze_now_records_time_and_versions_and_nothing_else_differs() -> None:
    bundle = Ecosystem(EcosystemConfig(seed=2, n_items=30)).bundle()
    before = datetime.now(UTC)
    result = analyze_now(bundle, FAST, provenance={"audit_id": "a-1"})
    created = datetime.fromisoformat(result.provenance.created_at or "")
    assert created.tzinfo is not None and before <= created <= datetime.now(UTC)
    assert set(result.provenance.software) == set(SOFTWARE_PACKAGES)
    assert result.provenance.software["numpy"] == metadata.version("numpy")
    assert result.provenance.audit_id == "a-1"
    pure = analyze(bundle, FAST, provenance={"audit_id": "a-1"})
    assert pure.provenance.created_at is None and pure.provenance.software == {}
    assert result.judges == pure.judges and result.pooled == pure.pooled
