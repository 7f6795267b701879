"""The canonical JSON of a result and its SHA-256: how a reader verifies a report's result.

The canonical form is the JSON document of the result (``model_dump_json``) re-encoded as
``json.dumps(document, sort_keys=True, separators=(",", ":"))`` (ASCII, non-ASCII characters
escaped), the same convention as the input hash (`auditor.probes.affinity.bundle_sha256`), so anyone
can recompute it from the JSON report with the standard library alone (the recipe is printed in
every report).
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata

from auditor.schemas.result import AffinityReport

__all__ = ["canonical_json", "renderer_versions", "result_sha256"]


def canonical_json(report: AffinityReport) -> bytes:
    document = json.loads(report.model_dump_json())
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("ascii")


def result_sha256(report: AffinityReport) -> str:
    """SHA-256 (hex) of the canonical JSON of ``report``."""
    return hashlib.sha256(canonical_json(report)).hexdigest()


def renderer_versions() -> list[tuple[str, str]]:
    """Versions of the packages that draw the report (not those that computed the result)."""
    versions = []
    for package in ("judge-auditor", "jinja2", "matplotlib", "weasyprint"):
        try:
            versions.append((package, metadata.version(package)))
        except metadata.PackageNotFoundError:
            continue
    return versions
