"""The versioned result of an affinity-bias analysis: what reports render and the API serves.

Everything a report shows is held here, so a stored result can be rendered again later without
re-running anything. Values that are undefined are ``None`` with a reason beside them.
"""

from __future__ import annotations

import importlib
import typing
from functools import cache
from typing import TYPE_CHECKING, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, model_validator

from auditor.schemas.limits import MAX_RESAMPLES, MAX_SEED
from auditor.schemas.probe import MultipleTesting, ProbeFinding, ProbeResult, ProbeSkipped

if TYPE_CHECKING:  # pandas only for the type of `to_frames`; it is imported when called
    import pandas as pd

__all__ = [
    "RESULT_SCHEMA_VERSION",
    "SOFTWARE_PACKAGES",
    "AffinityReport",
    "AnalysisSettings",
    "AuditResult",
    "Coverage",
    "JudgeResult",
    "ModelSummary",
    "OLSFit",
    "PairResult",
    "PooledResult",
    "Provenance",
]

RESULT_SCHEMA_VERSION: Final = "1.1"
SOFTWARE_PACKAGES: Final = (
    "judge-auditor",
    "numpy",
    "scipy",
    "pandas",
    "statsmodels",
    "litellm",  # every model call of an audit goes through it
)
"""The packages whose installed versions a result's provenance records (``software``)."""

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class AnalysisSettings(BaseModel):
    """Settings of the affinity analysis; every default follows Goel et al. (2025)."""

    model_config = _FROZEN

    method: Literal["pearson", "spearman"] = Field(
        default="pearson", description="Correlation method of the partial correlation."
    )
    alpha: float = Field(
        default=0.05, gt=0, lt=1, description="Significance level for flagging a judge."
    )
    correction: Literal["holm", "fdr_bh"] = Field(
        default="holm",
        description="Multiple-testing correction across judges used for flagging "
        "(both Holm and Benjamini-Hochberg adjusted p-values are always reported).",
    )
    min_effect: float = Field(
        default=0.0, ge=-1, le=1, description="A judge is flagged only if partial r > this value."
    )
    n_bootstrap: int = Field(
        default=10_000,
        ge=0,
        le=MAX_RESAMPLES,
        description="Bootstrap resamples of candidates (0 = none).",
    )
    n_permutations: int = Field(
        default=10_000,
        ge=0,
        le=MAX_RESAMPLES,
        description="Permutations for the permutation p-value (0 = none).",
    )
    seed: int = Field(
        default=0,
        ge=0,
        le=MAX_SEED,
        description="Seed of the bootstrap and permutation generator.",
    )
    min_candidates: int = Field(
        default=5, ge=4, description="Fewer candidates than this is 'insufficient data'."
    )
    exclude_same_family: bool = Field(
        default=False, description="Exclude candidates of the judge's own family."
    )
    exclude_pairs: list[tuple[str, str]] = Field(
        default_factory=list, description="(judge, candidate) pairs excluded by configuration."
    )
    difficulty_bins: int = Field(
        default=5,
        ge=2,
        le=20,
        description="Quantile bins of item difficulty in the reliability and supervision "
        "probes (Zhou et al. 2024); ties can merge bins, the report states how many resulted.",
    )
    similarity: Literal["capa"] = Field(
        default="capa",
        description="Similarity metric: CAPA (probabilistic where both models have "
        "probabilities, discrete otherwise).",
    )


class OLSFit(BaseModel):
    """Ordinary least squares fit of score ~ capa + accuracy (statsmodels)."""

    model_config = _FROZEN

    coefficients: dict[str, float] = Field(description="Intercept, capa and accuracy slopes.")
    std_errors: dict[str, float] = Field(description="Standard errors of the coefficients.")
    p_values: dict[str, float] = Field(description="Two-sided p-values of the coefficients.")
    r_squared: float = Field(description="Coefficient of determination.")
    n: int = Field(description="Number of observations (candidates).")


class JudgeResult(BaseModel):
    """Affinity bias of one judge across its candidates."""

    model_config = _FROZEN

    judge: str
    status: Literal["ok", "insufficient_data"] = Field(
        description="`insufficient_data` when fewer candidates than `min_candidates` remain."
    )
    reason: str | None = Field(default=None, description="Why the status is not `ok`.")
    n_candidates: int = Field(description="Candidates with a score, a CAPA and an accuracy.")
    excluded_candidates: list[str] = Field(
        default_factory=list, description="Candidates left out (self, family, configured)."
    )
    partial_r: float | None = Field(
        default=None, description="Partial correlation of score and CAPA, given accuracy."
    )
    ci95: tuple[float, float] | None = Field(
        default=None, description="Fisher-z 95% CI of partial_r (unrounded; pingouin's method)."
    )
    p_value: float | None = Field(default=None, description="Two-sided p-value of partial_r.")
    p_holm: float | None = Field(default=None, description="Holm-adjusted p across judges.")
    p_fdr_bh: float | None = Field(
        default=None, description="Benjamini-Hochberg adjusted p across judges."
    )
    p_adjusted: float | None = Field(
        default=None, description="The adjusted p used for flagging (see settings.correction)."
    )
    bootstrap_ci95: tuple[float, float] | None = Field(
        default=None, description="Percentile bootstrap 95% CI of partial_r (candidates)."
    )
    permutation_p: float | None = Field(
        default=None, description="Freedman-Lane permutation p-value of partial_r."
    )
    pearson_r: float | None = Field(
        default=None, description="Raw correlation of score and CAPA (no control)."
    )
    ols: OLSFit | None = Field(default=None, description="OLS fit score ~ capa + accuracy.")
    flagged: bool = Field(
        default=False, description="p_adjusted < alpha and partial_r > min_effect."
    )
    correction: str | None = Field(
        default=None,
        description="The multiple-testing family and method behind p_adjusted and flagged: "
        "`... across judges` in a stand-alone affinity analysis, `... across judges x probes` "
        "in an audit (the same p_adjusted and flag as this judge's `probes.affinity` entry).",
    )


class PairResult(BaseModel):
    """One (judge, candidate) pair."""

    model_config = _FROZEN

    judge: str
    candidate: str
    capa: float | None = Field(description="Judge-candidate CAPA; null when undefined.")
    capa_kind: Literal["probabilistic", "discrete"] = Field(
        description="Probabilistic CAPA when both models gave probabilities, else discrete."
    )
    capa_undefined_reason: str | None = Field(default=None, description="Why CAPA is null.")
    judgment_score: float | None = Field(
        description="#1 / (#1 + #0) over the judge's valid verdicts; null with no valid verdict."
    )
    accuracy: float | None = Field(description="The candidate's ground-truth MCQ accuracy.")
    n_valid: int = Field(description="Verdicts that were 0 or 1.")
    n_invalid: int = Field(description="Unparseable verdicts (excluded from the score).")
    excluded: bool = Field(default=False, description="Left out of the judge's test.")
    exclusion_reason: str | None = Field(default=None, description="Why it was left out.")


class PooledResult(BaseModel):
    """Fixed-effect Fisher-z combination of the judges' partial correlations."""

    model_config = _FROZEN

    method: Literal["fisher_z_fixed_effect"] = "fisher_z_fixed_effect"
    n_judges: int
    r: float | None = None
    ci95: tuple[float, float] | None = None
    p_value: float | None = None
    note: str = Field(
        default="Judges share candidates, so their estimates are not independent; the pooled "
        "CI is optimistic.",
        description="Caveat a reader needs.",
    )


class ModelSummary(BaseModel):
    """One model's role and ground-truth performance."""

    model_config = _FROZEN

    name: str
    provider: str | None = None
    family: str | None = None
    accuracy: float | None = Field(description="Ground-truth MCQ accuracy.")
    n_items: int = Field(description="Items the model answered.")
    probabilistic: bool = Field(description="False when only chosen options were available.")
    is_judge: bool = False
    is_candidate: bool = False


class Coverage(BaseModel):
    """What data the analysis had and what was missing: stated, never hidden."""

    model_config = _FROZEN

    n_items: int
    n_outputs: int
    n_verdicts: int
    n_invalid_verdicts: int = Field(description="Unparseable verdicts, excluded from scores.")
    discrete_only_models: list[str] = Field(default_factory=list)
    pairs_without_verdicts: int = Field(
        default=0, description="(judge, candidate) pairs with no valid verdict."
    )
    failed_calls: dict[str, int] = Field(
        default_factory=dict, description="Model calls that failed for good, per stage."
    )
    notes: list[str] = Field(default_factory=list)


class Provenance(BaseModel):
    """What a reviewer needs to reproduce and verify the result."""

    model_config = ConfigDict(frozen=True, extra="allow")

    input_sha256: str = Field(description="SHA-256 of the canonical JSON of the input bundle.")
    created_at: str | None = Field(
        default=None,
        description="ISO-8601 UTC time the analysis ran, as the caller (service, CLI) recorded "
        "it; null when the caller gave none (`auditor.analyze` does not read the clock).",
    )
    software: dict[str, str] = Field(
        default_factory=dict,
        description="Versions of the packages that computed it, as the caller recorded them.",
    )
    code_commit: str | None = Field(
        default=None,
        description="Git commit of the judge-auditor code that computed it ('+modified' when "
        "the checkout had changes; 'unknown' when it could not be told); null when not recorded.",
    )
    audit_id: str | None = None
    spec: dict | None = Field(default=None, description="The audit spec (no credentials).")
    models: list[dict] = Field(
        default_factory=list, description="Model identifiers and parameters as called."
    )
    prompt_templates: dict[str, str] = Field(
        default_factory=dict, description="Judge prompt template name -> SHA-256."
    )


@cache
def probe_result_model(name: str) -> type[ProbeResult]:
    """The result model of the probe ``name``: the `ProbeResult` subclass whose ``probe`` default
    is ``name`` in ``auditor.schemas.<name>`` (the layout's convention: one schema module per
    probe, named as the probe). Found by name so that schemas import no probe code and a stored
    result can be read back by the API and the reports without running anything.

    >>> probe_result_model("affinity").__name__
    'AffinityProbeResult'
    """
    try:
        module = importlib.import_module(f"auditor.schemas.{name}")
    except ModuleNotFoundError:
        raise ValueError(
            f"probe {name!r}: no result model (expected auditor/schemas/{name}.py)"
        ) from None
    for value in vars(module).values():
        if (
            isinstance(value, type)
            and issubclass(value, ProbeResult)
            and value.model_fields["probe"].default == name
        ):
            return value
    raise ValueError(f"probe {name!r}: auditor.schemas.{name} defines no ProbeResult for it")


def probe_finding_model(name: str) -> type[ProbeFinding]:
    """The finding model of the probe ``name`` (the item type of its result's ``findings``)."""
    annotation = probe_result_model(name).model_fields["findings"].annotation
    (finding,) = typing.get_args(annotation) or (ProbeFinding,)
    if isinstance(finding, type) and issubclass(finding, ProbeFinding):
        return finding
    return ProbeFinding


class AuditResult(BaseModel):
    """The versioned result object of an audit: the affinity analysis (judges, pairs, pooled,
    models, coverage; schema 1.0) and, since schema 1.1, every registered probe that ran
    (``probes``: headline findings per judge, with p adjusted across judges x probes;
    ``probe_results``: each probe's own versioned result) and the probes that were skipped with
    their reason. A 1.0 document (no probe fields) still validates."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal["1.0", "1.1"] = RESULT_SCHEMA_VERSION
    settings: AnalysisSettings
    judges: list[JudgeResult]
    pairs: list[PairResult]
    pooled: PooledResult
    models: list[ModelSummary]
    coverage: Coverage
    provenance: Provenance
    probes: dict[str, list[SerializeAsAny[ProbeFinding]]] = Field(
        default_factory=dict,
        description="Probe name -> its findings (one per judge or model), in registry order; "
        "``p_adjusted`` is adjusted across all judges x probes (settings.correction).",
    )
    probe_results: dict[str, SerializeAsAny[ProbeResult]] = Field(
        default_factory=dict,
        description="Probe name -> the probe's own versioned result (its details); the "
        "affinity probe's details are this result's top-level fields.",
    )
    skipped_probes: list[ProbeSkipped] = Field(
        default_factory=list,
        description="Registered probes that did not run on this bundle, with the reason.",
    )
    multiple_testing: MultipleTesting | None = Field(
        default=None,
        description="The one correction behind every flag of this result (family, method, "
        "number of tests); null in documents written before it was recorded.",
    )

    @model_validator(mode="before")
    @classmethod
    def _typed_probe_parts(cls, data: Any) -> Any:
        """Read stored probe parts back into each probe's own models (found by name)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        results = data.get("probe_results")
        if isinstance(results, dict):
            data["probe_results"] = {
                name: probe_result_model(name).model_validate(value)
                if isinstance(value, dict)
                else value
                for name, value in results.items()
            }
        probes = data.get("probes")
        if isinstance(probes, dict):
            data["probes"] = {
                name: [
                    probe_finding_model(name).model_validate(f) if isinstance(f, dict) else f
                    for f in findings
                ]
                if isinstance(findings, list)
                else findings
                for name, findings in probes.items()
            }
        return data

    def to_frames(self) -> dict[str, pd.DataFrame]:
        """The result as pandas DataFrames, for a notebook: ``judges`` (one row per judge, OLS
        flattened), ``pairs`` (one row per judge x candidate), ``models``, and ``findings``
        (one row per probe x finding, the probe-specific fields beside the common ones).

        >>> frames = result.to_frames()  # doctest: +SKIP
        >>> frames["judges"].set_index("judge")["partial_r"]  # doctest: +SKIP
        """
        import pandas as pd  # pandas is slow to import; only a caller of to_frames pays for it

        judges = []
        for judge in self.judges:
            row = judge.model_dump(exclude={"ols", "ci95", "bootstrap_ci95", "excluded_candidates"})
            row["ci95_low"], row["ci95_high"] = judge.ci95 or (None, None)
            low_high = judge.bootstrap_ci95 or (None, None)
            row["bootstrap_ci95_low"], row["bootstrap_ci95_high"] = low_high
            row["excluded_candidates"] = ", ".join(judge.excluded_candidates)
            for part in ("coefficients", "std_errors", "p_values"):
                values = getattr(judge.ols, part) if judge.ols is not None else {}
                for term, value in values.items():
                    row[f"ols_{part}_{term}"] = value
            row["ols_r_squared"] = judge.ols.r_squared if judge.ols is not None else None
            judges.append(row)
        findings = []
        for name, entries in self.probes.items():
            for finding in entries:
                row = {"probe": name, **finding.model_dump()}
                if row.get("ci95") is not None:
                    row["ci95_low"], row["ci95_high"] = row["ci95"]
                else:
                    row["ci95_low"] = row["ci95_high"] = None
                row.pop("ci95", None)
                findings.append(row)
        common = ["probe", *ProbeFinding.model_fields]
        columns = [c for c in common if c != "ci95"] + ["ci95_low", "ci95_high"]
        findings_frame = pd.DataFrame(findings)
        if findings_frame.empty:
            findings_frame = pd.DataFrame(columns=columns)
        else:
            rest = [c for c in findings_frame.columns if c not in columns]
            findings_frame = findings_frame[columns + rest]
        return {
            "judges": pd.DataFrame(judges),
            "pairs": pd.DataFrame([pair.model_dump() for pair in self.pairs]),
            "models": pd.DataFrame([model.model_dump() for model in self.models]),
            "findings": findings_frame,
        }


AffinityReport = AuditResult
"""The name of `AuditResult` before probes (schema 1.0); kept so existing callers read on."""
