"""The public Python API (`import auditor`): the exported names, pinned as httpx pins its own
(derived from ``vars(auditor)``); `Bundle.from_frames`, `analyze`, `AuditResult.to_frames`,
`similarity_matrix`, `write_report`; and the README's notebook example, executed.

References: the record-by-record bundle rules (`parse_bundle`) for `from_frames`;
statsmodels' `multipletests` for the correction across judges x probes; the affinity analysis
itself (`analyze_affinity`) for the affinity probe's findings."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

import auditor
from auditor.ecosystem import Ecosystem, EcosystemConfig
from auditor.probes import REGISTRY
from auditor.probes.affinity import analyze_affinity
from auditor.schemas.bundle import BundleError, parse_bundle
from auditor.schemas.result import AuditResult

ROOT = Path(__file__).resolve().parents[2]
FAST = auditor.AnalysisSettings(n_bootstrap=200, n_permutations=200)
EXPORTED = [
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


@pytest.fixture(scope="module")
def world_bundle() -> auditor.Bundle:
    return Ecosystem(EcosystemConfig(n_items=40, seed=11, judge_affinity={"atlas-1": 0.9})).bundle()


@pytest.fixture(scope="module")
def result(world_bundle: auditor.Bundle) -> AuditResult:
    return auditor.analyze(world_bundle, FAST)


def frames_of(bundle: auditor.Bundle) -> dict[str, pd.DataFrame]:
    return {
        section: pd.DataFrame([record.model_dump() for record in getattr(bundle, section)])
        for section in ("items", "outputs", "verdicts", "models")
    }


def test_all_is_what_the_package_exports() -> None:
    # As httpx does: the public names of the module are exactly __all__ (lazy ones resolved).
    for name in auditor.__all__:
        getattr(auditor, name)
    public = sorted(
        name
        for name, value in vars(auditor).items()
        if (not name.startswith("_") or name == "__version__")
        and not isinstance(value, types.ModuleType)
        and name not in {"annotations", "importlib", "TYPE_CHECKING", "Any"}
    )
    assert auditor.__all__ == EXPORTED
    assert public == sorted(EXPORTED)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        auditor.nope  # noqa: B018


def test_import_auditor_is_cheap() -> None:
    heavy = "('pandas', 'scipy', 'numpy', 'litellm', 'pingouin')"
    code = f"import sys, auditor; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_from_frames_equals_the_record_path(world_bundle: auditor.Bundle) -> None:
    built = auditor.Bundle.from_frames(**frames_of(world_bundle))
    assert built == parse_bundle(json.loads(world_bundle.model_dump_json()))
    # models default to the names met in outputs and verdicts
    frames = frames_of(world_bundle)
    del frames["models"]
    assert {m.name for m in auditor.Bundle.from_frames(**frames).models} == {
        m.name for m in world_bundle.models
    }


def test_from_frames_names_row_and_field(world_bundle: auditor.Bundle) -> None:
    frames = frames_of(world_bundle)
    frames["outputs"].at[3, "probs"] = [0.5, 0.6, 0.1, 0.1]
    with pytest.raises(BundleError) as caught:
        auditor.Bundle.from_frames(**frames)
    assert re.search(r"outputs\[3\] .*\.probs: must sum to 1", str(caught.value)), caught.value
    frames = frames_of(world_bundle)
    frames["verdicts"].loc[0, "verdict"] = 7
    with pytest.raises(BundleError, match=r"verdicts\[0\]\.verdict: Input should be 0 or 1"):
        auditor.Bundle.from_frames(**frames)
    with pytest.raises(ValueError, match="items: must be a pandas DataFrame; got list"):
        auditor.Bundle.from_frames(items=[])


def test_verdict_column_with_missing_values_reads_as_integers(world_bundle: auditor.Bundle) -> None:
    frames = frames_of(world_bundle)
    frames["verdicts"]["verdict"] = frames["verdicts"]["verdict"].astype(float)
    frames["verdicts"].loc[0, "verdict"] = np.nan  # an unparseable verdict
    built = auditor.Bundle.from_frames(**frames)
    assert built.verdicts[0].verdict is None
    assert built.verdicts[1:] == world_bundle.verdicts[1:]


def test_analyze_runs_every_probe_with_its_inputs(
    world_bundle: auditor.Bundle, result: AuditResult
) -> None:
    assert result.schema_version == "1.1"
    ran = set(result.probes)
    skipped = {s.probe: s.reason for s in result.skipped_probes}
    assert ran | set(skipped) == {p.name for p in REGISTRY} and not ran & set(skipped)
    assert "affinity" in ran and skipped["position"] == "no comparisons"
    assert list(result.probes) == [p.name for p in REGISTRY if p.name in ran]
    # the affinity content is today's analysis, and its findings are its judges
    alone = analyze_affinity(world_bundle, FAST)
    assert result.pairs == alone.pairs
    family = {"p_adjusted", "flagged", "correction"}  # one correction: judges x probes
    assert [j.model_dump(exclude=family) for j in result.judges] == [
        j.model_dump(exclude=family) for j in alone.judges
    ]
    findings = {f.judge: f for f in result.probes["affinity"]}
    for judge in alone.judges:
        assert findings[judge.judge].estimate == judge.partial_r
        assert findings[judge.judge].p_value == judge.p_value
    assert result.probe_results["affinity"].findings == result.probes["affinity"]


def test_p_adjusted_across_judges_and_probes_equals_statsmodels(result: AuditResult) -> None:
    tested = [f for findings in result.probes.values() for f in findings if f.p_value is not None]
    assert len(tested) > len(result.probes["affinity"])  # more than one probe reports p-values
    reference = multipletests([f.p_value for f in tested], method="holm")[1]
    np.testing.assert_allclose([f.p_adjusted for f in tested], reference, rtol=1e-12)
    for finding in tested:
        if finding.flagged:
            assert finding.p_adjusted < result.settings.alpha


def test_one_family_decides_every_flag_and_says_so(result: AuditResult) -> None:
    """The affinity section (judges) and ``probes`` carry the same adjusted p and flag, and
    every adjusted finding names the family (judges x probes) and method it was adjusted in."""
    tested = [f for findings in result.probes.values() for f in findings if f.p_value is not None]
    family = result.multiple_testing
    assert family is not None and family.family == "judges x probes"
    assert family.method == "holm" and family.n_tests == len(tested)
    assert family.label == f"holm across judges x probes ({len(tested)} tests)"
    with_p = {n for n, fs in result.probes.items() if any(f.p_value is not None for f in fs)}
    assert set(family.probes) == with_p
    assert all(f.correction == family.label for f in tested)
    by_judge = {f.judge: f for f in result.probes["affinity"]}
    for judge in result.judges:
        finding = by_judge[judge.judge]
        assert judge.p_adjusted == finding.p_adjusted and judge.flagged == finding.flagged
        if judge.p_value is not None:
            assert judge.correction == family.label
            # the flag is the rule the family states, from the unadjusted p and the direction
            assert judge.flagged == (
                judge.p_adjusted < family.alpha
                and judge.p_value < family.alpha
                and judge.partial_r > result.settings.min_effect
            )
    # read back from JSON, the family and the labels are kept
    back = AuditResult.model_validate_json(result.model_dump_json())
    assert back.multiple_testing == family and back.judges == result.judges


def test_analyze_is_pure_and_round_trips(world_bundle: auditor.Bundle, result: AuditResult) -> None:
    assert result.provenance.created_at is None and result.provenance.software == {}
    again = auditor.analyze(world_bundle, FAST, provenance={"created_at": "2026-01-01T00:00:00Z"})
    assert again.model_copy(update={"provenance": result.provenance}) == result
    back = AuditResult.model_validate_json(result.model_dump_json())
    assert back == result
    assert type(back.probe_results["correlated_errors"]) is type(
        result.probe_results["correlated_errors"]
    )


def test_to_frames(result: AuditResult) -> None:
    frames = result.to_frames()
    judges = frames["judges"].set_index("judge")
    assert list(judges.index) == [j.judge for j in result.judges]
    first = result.judges[0]
    assert judges.loc[first.judge, "partial_r"] == first.partial_r
    assert len(frames["pairs"]) == len(result.pairs)
    findings = frames["findings"]
    assert len(findings) == sum(len(f) for f in result.probes.values())
    assert set(findings["probe"]) == set(result.probes)


def test_similarity_matrix_and_write_report(
    world_bundle: auditor.Bundle, result: AuditResult, tmp_path: Path
) -> None:
    matrix = auditor.similarity_matrix(world_bundle)
    assert matrix.metric == "capa" and len(matrix.models) == len(world_bundle.models)
    with pytest.raises(ValueError, match="metric: must be one of"):
        auditor.similarity_matrix(world_bundle, "cosine")  # type: ignore[arg-type]
    written = auditor.write_report(result, tmp_path, ["json", "md"])
    document = json.loads(written["json"].read_text())
    assert set(document["probes"]) == set(result.probes)
    markdown = written["md"].read_text()
    assert "## Probes" in markdown and "### Correlated errors" in markdown


def test_readme_notebook_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Notebook example", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code.group(1), "README.md", "exec"), namespace)
    judges = namespace["judges"]
    assert bool(judges.loc["atlas-3", "flagged"])  # the planted affinity is found (this seed)
    assert not bool(judges.loc["boreal-3", "flagged"])
    assert (tmp_path / "audit-report" / "report.html").exists()
    assert "affinity" in namespace["result"].probes
