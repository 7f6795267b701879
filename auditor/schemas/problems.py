"""What is wrong with an input: `Problem` (a located message) and `BundleError` (every problem
found). A module of its own, without numpy or pydantic, so that the command line can catch these
errors without loading the bundle models (``auditor --version`` and ``--help`` start faster)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BundleError", "Problem"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, located by a path such as ``outputs[3].probs``."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class BundleError(ValueError):
    """Raised when a bundle is invalid; ``problems`` lists every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        shown = "; ".join(str(p) for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(f"invalid bundle: {shown}{more}")
