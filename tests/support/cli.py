"""The `auditor` command line as a user runs it: a subprocess of this interpreter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

__all__ = ["run_cli"]


def run_cli(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """``python -m auditor.cli ARGS`` in ``cwd`` with exactly ``env``; output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "auditor.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
