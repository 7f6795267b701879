"""The test lanes' own rules (issue 9): a test module imports no other test module, and helpers
shared between tests live in tests/support/.

Reference: the tests' source, read with `ast` (nothing is imported)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_tests_import_only_the_support_package_of_the_tests() -> None:
    outside_support = [
        f"{path.relative_to(TESTS.parent)} imports {name}"
        for path in sorted(TESTS.rglob("*.py"))
        if "support" not in path.relative_to(TESTS).parts[:1]
        for name in imported_modules(path)
        if name.split(".")[0] == "tests" and not name.startswith(("tests.support", "tests.stubs"))
    ]
    assert outside_support == []


def test_helpers_beside_the_tests_are_test_modules_or_conftests() -> None:
    """A module in a lane that is not a test module is a helper: it belongs in tests/support/."""
    helpers = [
        str(path.relative_to(TESTS.parent))
        for lane in ("unit", "integration")
        for path in sorted((TESTS / lane).rglob("*.py"))
        if not path.name.startswith("test_") and path.name not in ("conftest.py", "__init__.py")
    ]
    assert helpers == []
