"""The analysis of a bundle: every registered probe whose inputs the bundle holds.

`analyze` computes the affinity analysis (the audit result's top level), then runs each probe of
`auditor.probes.REGISTRY` in order: a probe whose `missing_inputs` names a reason is recorded in
``skipped_probes`` with it; the others compute their versioned results. The findings' p-values
are then adjusted together across judges x probes (Holm or Benjamini-Hochberg, as
``settings.correction`` says), so a large audit does not flag by chance. Pure: the caller (the
services, the CLI) records the time and the software versions in ``provenance``.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np

from auditor.probes import REGISTRY
from auditor.probes.affinity import AFFINITY, affinity_findings, analyze_affinity
from auditor.probes.base import Probe, ProbeContext, SharedArrays
from auditor.schemas.bundle import Bundle, ResponseMatrix
from auditor.schemas.columns import BundleColumns, bundle_columns, response_matrix_from_columns
from auditor.schemas.probe import (
    MultipleTesting,
    ProbeFinding,
    ProbeResult,
    ProbeSkipped,
    multiple_testing,
)
from auditor.schemas.result import (
    RESULT_SCHEMA_VERSION,
    AnalysisSettings,
    AuditResult,
    JudgeResult,
)
from auditor.stats.multitest import adjust_p_values
from auditor.stats.similarity import METRICS, Metric, SimilarityMatrix
from auditor.stats.similarity import similarity_matrix as _similarity_matrix

__all__ = [
    "adjust_across_probes",
    "adjust_family",
    "analyze",
    "family_of",
    "probe_generator",
    "run_probes",
    "similarity_matrix",
]


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
    ``settings.alpha`` (the probe alone knows which direction is biased). Each adjusted finding
    names the family in ``correction`` (`family_of` describes it in full)."""
    tested = [
        (name, i, finding.p_value)
        for name, findings in probes.items()
        for i, finding in enumerate(findings)
        if finding.p_value is not None
    ]
    adjusted = adjust_p_values([p for _, _, p in tested])[settings.correction]
    label = family_of(probes, settings).label
    out = {name: list(findings) for name, findings in probes.items()}
    for (name, i, _), p_adjusted in zip(tested, adjusted, strict=True):
        finding = out[name][i]
        out[name][i] = finding.model_copy(
            update={
                "p_adjusted": float(p_adjusted),
                "flagged": finding.flagged and float(p_adjusted) < settings.alpha,
                "correction": label,
            }
        )
    return out


def family_of(probes: dict[str, list[ProbeFinding]], settings: AnalysisSettings) -> MultipleTesting:
    """The one multiple-testing family of ``probes``: every finding with a p-value, judges x
    probes, adjusted by ``settings.correction`` at ``settings.alpha``."""
    return multiple_testing(
        settings.correction,
        settings.alpha,
        "judges x probes",
        [name for name, findings in probes.items() if any(f.p_value is not None for f in findings)],
        sum(f.p_value is not None for findings in probes.values() for f in findings),
    )


def adjust_family(
    results: dict[str, ProbeResult], settings: AnalysisSettings
) -> tuple[dict[str, ProbeResult], MultipleTesting]:
    """Each probe result with its findings adjusted in the one family (`adjust_across_probes`),
    and the family's description. The audit's analysis and the battery both adjust here."""
    findings = adjust_across_probes(
        {name: list(result.findings) for name, result in results.items()}, settings
    )
    adjusted = {
        name: result.model_copy(update={"findings": findings[name]})
        for name, result in results.items()
    }
    return adjusted, family_of(findings, settings)


def run_probes(
    bundle: Bundle | Callable[[], Bundle],
    settings: AnalysisSettings,
    probes: tuple[Probe, ...],
    *,
    columns: BundleColumns | None = None,
    arrays: SharedArrays | None = None,
) -> tuple[dict[str, ProbeResult], list[ProbeSkipped]]:
    """Each of ``probes`` that the bundle has inputs for, computed with its own random stream
    (`probe_generator`), unadjusted; the others with the reason they did not run. ``columns``
    is the same bundle as columns, when the caller holds them (`ProbeContext.columns`): the
    inputs are then checked on the columns, and ``bundle`` may be a function building the
    record form, called once and only if a probe that reads records runs. ``arrays`` are the
    response and CAPA matrices of the bundle the probes share (`SharedArrays`; one is made
    for these probes when not given)."""
    if callable(bundle):
        if columns is None:
            raise ValueError("bundle: a function building the records needs the columns too")
        records: Bundle | Callable[[], Bundle] = functools.cache(bundle)
    else:
        records = bundle
    inputs: Bundle | BundleColumns = records if columns is None else columns  # type: ignore[assignment]
    if arrays is None:
        arrays = SharedArrays(inputs)
    results: dict[str, ProbeResult] = {}
    skipped: list[ProbeSkipped] = []
    for probe in probes:
        reason = probe.missing_inputs(inputs)
        if reason is not None:
            skipped.append(ProbeSkipped(probe=probe.name, reason=reason))
            continue
        context = ProbeContext(
            bundle=records,
            settings=settings,
            rng=probe_generator(settings.seed, probe.name),
            columns=columns,
            arrays=arrays,
        )
        results[probe.name] = probe.compute(context)
    return results, skipped


def _with_family_flags(
    report: AuditResult, affinity: ProbeResult | None, family: MultipleTesting
) -> list[JudgeResult]:
    """The affinity judges with the family's adjusted p and flag (the same as their
    ``probes.affinity`` entries): one correction, so the affinity section and ``probes`` agree."""
    if affinity is None:
        return list(report.judges)
    by_judge = {f.judge: f for f in affinity.findings if f.p_value is not None}
    judges = []
    for judge in report.judges:
        finding = by_judge.get(judge.judge)
        if finding is None:
            judges.append(judge)
            continue
        judges.append(
            judge.model_copy(
                update={
                    "p_adjusted": finding.p_adjusted,
                    "flagged": finding.flagged,
                    "correction": family.label,
                }
            )
        )
    return judges


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
    # The response and CAPA matrices, computed once for the affinity analysis and every probe.
    arrays = SharedArrays(bundle)
    report = analyze_affinity(bundle, settings, provenance=provenance, arrays=arrays)
    probes = REGISTRY if registry is None else registry
    # The record form only if a probe that reads records runs (seconds for a large bundle).
    records = bundle if isinstance(bundle, Bundle) else bundle.to_bundle
    others = tuple(probe for probe in probes if probe is not AFFINITY)
    columns = bundle if isinstance(bundle, BundleColumns) else None
    computed, skipped = run_probes(records, settings, others, columns=columns, arrays=arrays)
    del arrays  # the response matrix of a large bundle: not held while the result is built
    results: dict[str, ProbeResult] = {}
    for probe in probes:  # registry order
        if probe is AFFINITY:
            reason = probe.missing_inputs(bundle)
            if reason is not None:
                skipped.insert(0, ProbeSkipped(probe=probe.name, reason=reason))
            else:
                results[probe.name] = affinity_findings(report)
        elif probe.name in computed:
            results[probe.name] = computed[probe.name]
    skipped.sort(key=lambda s: [p.name for p in probes].index(s.probe))
    results, family = adjust_family(results, settings)
    return AuditResult.model_validate(
        {
            **{field: getattr(report, field) for field in type(report).model_fields},
            "schema_version": RESULT_SCHEMA_VERSION,
            "judges": _with_family_flags(report, results.get(AFFINITY.name), family),
            "probes": {name: list(result.findings) for name, result in results.items()},
            "probe_results": results,
            "skipped_probes": skipped,
            "multiple_testing": family,
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
