"""Analysis as a service: the pure analysis of every registered probe, with the time and the
software versions recorded in the provenance (the only place they are read)."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import metadata
from typing import TYPE_CHECKING, Any

from auditor.schemas.result import SOFTWARE_PACKAGES, AnalysisSettings, AuditResult

if TYPE_CHECKING:
    from auditor.schemas.bundle import Bundle
    from auditor.schemas.columns import BundleColumns

__all__ = ["analyze_now", "software_versions"]


def software_versions() -> dict[str, str]:
    """Installed versions of the packages that compute a result ("not installed" if absent)."""
    versions = {}
    for package in SOFTWARE_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def analyze_now(
    bundle: Bundle | BundleColumns,
    settings: AnalysisSettings | None = None,
    *,
    provenance: dict[str, Any] | None = None,
) -> AuditResult:
    """`auditor.probes.analysis.analyze` with ``created_at`` (now, UTC, ISO-8601) and
    ``software`` (`software_versions`) added to the provenance."""
    # The analysis imports pandas and the statistics: only when a result is computed.
    from auditor.probes.analysis import analyze

    recorded = {"created_at": datetime.now(UTC).isoformat(), "software": software_versions()}
    return analyze(bundle, settings, provenance={**(provenance or {}), **recorded})
