"""What pyproject.toml promises about dependencies (issue 9, defect 3 and the CI break).

Reference: ``scripts/lowest-bounds``, which installs every runtime dependency AT its lower
bound and runs the unit lane there; the floors below are the versions it found the code to need
(with the API each one is needed for). A bound lowered below its floor fails here.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"

VERIFIED_FLOORS = {
    # FastAPI(max_body_size=...) and include_router(max_body_size=...) appear in 0.164.0.
    "fastapi": "0.164",
    # fastapi 0.164 requires pydantic>=2.9.
    "pydantic": "2.9",
}


def requirements(group: str | None = None) -> dict[str, Requirement]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    listed = project["dependencies"] if group is None else project["optional-dependencies"][group]
    parsed = [Requirement(entry) for entry in listed]
    return {requirement.name.lower(): requirement for requirement in parsed}


def lower_bound(requirement: Requirement) -> Version:
    bounds = [Version(s.version) for s in requirement.specifier if s.operator == ">="]
    assert len(bounds) == 1, f"{requirement}: needs exactly one '>=' lower bound"
    return bounds[0]


def test_every_runtime_dependency_has_a_lower_bound_the_code_runs_on() -> None:
    runtime = requirements()
    for name, requirement in runtime.items():
        assert re.fullmatch(r"[a-z0-9_.-]+", name), name
        bound = lower_bound(requirement)
        floor = VERIFIED_FLOORS.get(name)
        if floor is not None:
            assert bound >= Version(floor), (
                f"{requirement}: the code needs {name}>={floor} (see VERIFIED_FLOORS)"
            )


def test_a_fresh_install_does_not_resolve_pytest_9_2_which_breaks_schemathesis() -> None:
    """pytest 9.2.0 renamed Node._nodeid; schemathesis 4.32.5's plugin still uses it."""
    test = requirements("test")
    assert not test["pytest"].specifier.contains("9.2.0")
    assert test["pytest"].specifier.contains("9.0.3")  # known good with schemathesis 4.32.5
    assert test["pytest"].specifier.contains("9.1.1")


def test_import_linter_is_a_test_dependency() -> None:
    assert "import-linter" in requirements("test")
