"""The provenance `analyze_now` records: the time, the versions of the packages behind the
result (litellm, which made the calls, among them) and the code's git commit."""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path

import pytest

from auditor.ecosystem import Ecosystem, EcosystemConfig, FamilyConfig
from auditor.schemas.result import AnalysisSettings
from auditor.services import analysis

ROOT = Path(__file__).resolve().parents[3]


def _git_head() -> str | None:
    try:
        return subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def test_provenance_names_litellm_and_the_code_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(analysis.CODE_COMMIT_ENV, raising=False)
    analysis.code_commit.cache_clear()
    world = Ecosystem(
        EcosystemConfig(
            seed=3,
            n_items=20,
            families=[FamilyConfig(name=f, size=3) for f in "ab"],
            judges=["a-1", "b-1"],
        )
    )
    result = analysis.analyze_now(world.bundle(), AnalysisSettings(n_bootstrap=0, n_permutations=0))
    assert result.provenance.software["litellm"] == metadata.version("litellm")
    head = _git_head()
    commit = result.provenance.code_commit
    assert commit is not None
    if head is None:  # an unpacked archive, not a checkout: said so, not invented
        assert commit == "unknown" or len(commit) >= 40
    else:
        assert commit.removesuffix("+modified") == head


def test_code_commit_of_a_build_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(analysis.CODE_COMMIT_ENV, "0123abcd")
    analysis.code_commit.cache_clear()
    try:
        assert analysis.code_commit() == "0123abcd"
    finally:
        analysis.code_commit.cache_clear()
