"""The canonical JSON of a result and its SHA-256: how a reader verifies a report's result.

The canonical form is `auditor.schemas.canonical` (the one recipe of the project: the result's
JSON document re-encoded as ``json.dumps(document, sort_keys=True, separators=(",", ":"))``,
ASCII, non-ASCII characters escaped), so anyone can recompute it from the JSON report with the
standard library alone (the recipe is printed in every report). The stored result, the audit
trail and the signed manifest hold the same hash.
"""

from __future__ import annotations

from importlib import metadata

from auditor.schemas import canonical
from auditor.schemas.result import AffinityReport

__all__ = ["canonical_json", "renderer_versions", "result_sha256"]


def canonical_json(report: AffinityReport) -> bytes:
    """The canonical JSON of ``report``'s JSON document."""
    return canonical.canonical_json(canonical.json_document(report))


def result_sha256(report: AffinityReport) -> str:
    """SHA-256 (hex) of the canonical JSON of ``report``."""
    return canonical.canonical_sha256(canonical.json_document(report))


def renderer_versions() -> list[tuple[str, str]]:
    """Versions of the packages that draw the report (not those that computed the result)."""
    versions = []
    for package in ("judge-auditor", "jinja2", "matplotlib", "weasyprint"):
        try:
            versions.append((package, metadata.version(package)))
        except metadata.PackageNotFoundError:
            continue
    return versions
