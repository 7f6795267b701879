"""The `auditor` command line as a user runs it: a subprocess of this interpreter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

__all__ = ["modules_loaded_by", "run_cli"]


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


def modules_loaded_by(args: list[str], modules: list[str], timeout: float = 300) -> list[str]:
    """Which of ``modules`` a fresh interpreter has imported once ``auditor ARGS`` has run (it
    must succeed; its standard output is discarded): what the command costs at start-up."""
    code = (
        "import sys, io, contextlib\n"
        "from auditor.cli import app\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        f"        app({args!r})\n"
        "    except SystemExit as exit:\n"
        "        assert not exit.code, exit.code\n"
        f"print(sorted(m for m in {modules!r} if m in sys.modules))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout
    )
    assert completed.returncode == 0, completed.stderr
    loaded: list[str] = eval(completed.stdout)  # a list of names this code printed
    return loaded
