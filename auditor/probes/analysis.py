"""The analysis of a bundle: every registered probe whose inputs the bundle holds.

`analyze` computes the affinity analysis (the audit result's top level), then runs each probe of
`auditor.probes.REGISTRY` in order: a probe whose `missing_inputs` names a reason is recorded in
``skipped_probes`` with it; the others compute their versioned results. The findings' p-values
are then adjusted together across judges x probes (Holm or Benjamini-Hochberg, as
``settings.correction`` says), so a large audit does not flag by chance. Pure: the caller (the
services, the CLI) records the time and the software versions in ``provenance``.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from auditor.probes import REGISTRY
from auditor.probes.affinity import AFFINITY, affinity_findings, analyze_affinity
from auditor.probes.base import Probe, ProbeContext
from auditor.schemas.bundle import Bundle, ResponseMatrix
from auditor.schemas.columns import BundleColumns, bundle_columns, response_matrix_from_columns
from auditor.schemas.probe import ProbeFinding, ProbeResult, ProbeSkipped
from auditor.schemas.result import RESULT_SCHEMA_VERSION, AnalysisSettings, AuditResult
from auditor.stats.multitest import adjust_p_values
from auditor.stats.similarity import METRICS, Metric, SimilarityMatrix
from auditor.stats.similarity import similarity_matrix as _similarity_matrix

__all__ = ["adjust_across_probes", "analyze", "probe_generator", "similarity_matrix"]


def probe_generator(seed: int, probe: str) -> np.random.Generator:
    """The probe's own random stream: ``SeedSequence(seed, spawn_key=(h,))`` with h the first
    8 bytes of SHA-256(probe name), big-endian, so probes never share draws."""
    h = int.from_bytes(hashlib.sha256(probe.encode("utf-8")).digest()[:8], "big")
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(h,)))


def adjust_across_probes(
    probes: dict[str, list[ProbeFinding]], settings: AnalysisSettings
) -> dict[str, list[ProbeFinding]]:
    """Fill ``p_adjusted`` of every finding with a p-value, adjusted together across all judges
    x probes by ``settings.correction`` (`auditor.stats.multitest.adjust_p_values`). A finding
    stays ``flagged`` only if its probe flagged it and its adjusted p is below
    ``settings.alpha`` (the probe alone knows which direction is biased)."""
    tested = [
        (name, i, finding.p_value)
        for name, findings in probes.items()
        for i, finding in enumerate(findings)
        if finding.p_value is not None
    ]
    adjusted = adjust_p_values([p for _, _, p in tested])[settings.correction]
    out = {name: list(findings) for name, findings in probes.items()}
    for (name, i, _), p_adjusted in zip(tested, adjusted, strict=True):
        finding = out[name][i]
        out[name][i] = finding.model_copy(
            update={
                "p_adjusted": float(p_adjusted),
                "flagged": finding.flagged and float(p_adjusted) < settings.alpha,
            }
        )
    return out


def analyze(
    bundle: Bundle | BundleColumns,
    settings: AnalysisSettings | None = None,
    *,
    provenance: dict[str, Any] | None = None,
    registry: tuple[Probe, ...] | None = None,
) -> AuditResult:
    """The audit result of ``bundle``: the affinity analysis (`analyze_affinity`) plus every
    probe of ``registry`` (default `REGISTRY`) whose inputs the bundle holds, the skipped ones
    with their reason, and the findings' p adjusted across judges x probes.

    ``provenance`` holds what the caller recorded (audit_id, spec, created_at, software, ...);
    nothing here reads the clock or the installed versions, so the same bundle, settings and
    provenance give the same result.

    >>> result = analyze(load_bundle("eval.json"))  # doctest: +SKIP
    >>> sorted(result.probes)  # doctest: +SKIP
    ['affinity', 'correlated_errors']
    """
    settings = AnalysisSettings() if settings is None else settings
    report = analyze_affinity(bundle, settings, provenance=provenance)
    probes = REGISTRY if registry is None else registry
    records = bundle if isinstance(bundle, Bundle) else bundle.to_bundle()
    results: dict[str, ProbeResult] = {}
    skipped: list[ProbeSkipped] = []
    for probe in probes:
        reason = probe.missing_inputs(records)
        if reason is not None:
            skipped.append(ProbeSkipped(probe=probe.name, reason=reason))
            continue
        if probe is AFFINITY:
            results[probe.name] = affinity_findings(report)
            continue
        context = ProbeContext(
            bundle=records,
            settings=settings,
            rng=probe_generator(settings.seed, probe.name),
            columns=bundle if isinstance(bundle, BundleColumns) else None,
        )
        results[probe.name] = probe.compute(context)
    findings = adjust_across_probes(
        {name: list(result.findings) for name, result in results.items()}, settings
    )
    results = {
        name: result.model_copy(update={"findings": findings[name]})
        for name, result in results.items()
    }
    return AuditResult.model_validate(
        {
            **{field: getattr(report, field) for field in type(report).model_fields},
            "schema_version": RESULT_SCHEMA_VERSION,
            "probes": findings,
            "probe_results": results,
            "skipped_probes": skipped,
        }
    )


def similarity_matrix(
    bundle: Bundle | BundleColumns | ResponseMatrix, metric: Metric = "capa"
) -> SimilarityMatrix:
    """The model-by-model matrix of ``metric`` (one of `auditor.stats.similarity.METRICS`: CAPA
    by default) over the bundle's multiple-choice outputs under the primary template, as
    `auditor similarity` prints it.

    >>> matrix = similarity_matrix(load_bundle("eval.json"))  # doctest: +SKIP
    >>> matrix.to_frame()  # doctest: +SKIP
    """
    if metric not in METRICS:
        raise ValueError(f"metric: must be one of {', '.join(METRICS)}; got {metric!r}")
    if isinstance(bundle, Bundle):
        bundle = bundle_columns(bundle)
    responses = (
        bundle if isinstance(bundle, ResponseMatrix) else response_matrix_from_columns(bundle)
    )
    return _similarity_matrix(responses, metric)
