"""Judge Auditor: audits LLM judges for affinity bias and other judging biases.

The core (this package) holds the schemas, the statistics, storage and the services; it never
imports litellm or celery. Model I/O lives in `workers`, rendering in `reports`.

The public Python API, for a notebook::

    import auditor
    bundle = auditor.load_bundle("eval.json")        # or auditor.Bundle.from_frames(...)
    result = auditor.analyze(bundle)                 # every registered probe
    result.to_frames()["judges"]
    auditor.write_report(result, "out", ["html", "md", "json"])
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "AnalysisSettings",
    "AuditResult",
    "Bundle",
    "BundleError",
    "__version__",
    "analyze",
    "load_bundle",
    "similarity_matrix",
    "write_report",
]

# Attributes are loaded on first use (PEP 562): `import auditor` stays cheap for the CLI, the
# workers and the API, which import submodules only; the analysis pulls in pandas and scipy.
_LAZY = {
    "AnalysisSettings": ("auditor.schemas.result", "AnalysisSettings"),
    "AuditResult": ("auditor.schemas.result", "AuditResult"),
    "Bundle": ("auditor.schemas.bundle", "Bundle"),
    "BundleError": ("auditor.schemas.bundle", "BundleError"),
    "analyze": ("auditor.probes.analysis", "analyze"),
    "load_bundle": ("auditor.schemas.bundle", "load_bundle"),
    "similarity_matrix": ("auditor.probes.analysis", "similarity_matrix"),
    "write_report": ("reports", "write_reports"),
}

if TYPE_CHECKING:
    from auditor.probes.analysis import analyze, similarity_matrix
    from auditor.schemas.bundle import Bundle, BundleError, load_bundle
    from auditor.schemas.result import AnalysisSettings, AuditResult
    from reports import write_reports as write_report


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'auditor' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
