"""Analysis as a service: the pure analysis of every registered probe, with the time and the
software versions recorded in the provenance (the only place they are read)."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditor.schemas.result import SOFTWARE_PACKAGES, AnalysisSettings, AuditResult

if TYPE_CHECKING:
    from auditor.schemas.bundle import Bundle
    from auditor.schemas.columns import BundleColumns

__all__ = ["CODE_COMMIT_ENV", "analyze_now", "code_commit", "software_versions"]

CODE_COMMIT_ENV = "AUDITOR_CODE_COMMIT"
"""Set by a build that has no git checkout (a container image) to the commit it was built from."""


def software_versions() -> dict[str, str]:
    """Installed versions of the packages that compute a result ("not installed" if absent)."""
    versions = {}
    for package in SOFTWARE_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


@cache
def code_commit() -> str:
    """The git commit of the judge-auditor code that runs: ``$AUDITOR_CODE_COMMIT`` when set,
    else ``git rev-parse HEAD`` of the source checkout (``+modified`` when tracked files
    differ from it), else the commit pip recorded for a VCS install, else ``unknown``."""
    if os.environ.get(CODE_COMMIT_ENV):
        return os.environ[CODE_COMMIT_ENV]
    source = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        clean = subprocess.run(
            ["git", "-C", str(source), "diff", "--quiet", "HEAD", "--"],
            capture_output=True,
            timeout=10,
        )
        return head + ("" if clean.returncode == 0 else "+modified")
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        import json

        direct = metadata.distribution("judge-auditor").read_text("direct_url.json") or "{}"
        commit = json.loads(direct).get("vcs_info", {}).get("commit_id")
    except (metadata.PackageNotFoundError, ValueError):
        commit = None
    return commit or "unknown"


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

    recorded = {
        "created_at": datetime.now(UTC).isoformat(),
        "software": software_versions(),
        "code_commit": code_commit(),
    }
    return analyze(bundle, settings, provenance={**(provenance or {}), **recorded})
