"""Shared by both lanes: nothing that needs a service (the unit lane never imports redis)."""

from __future__ import annotations

import gc
import os

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# The terminal size a test sees is the one it sets (`runner.invoke(..., env={"COLUMNS": ...})`).
# rich fixes a console's width for good when COLUMNS is set as the console is built (the CLI's
# consoles read it at each print instead: `auditor.cli.terminal`); an inherited COLUMNS
# (pytest-xdist's workers export 80) would otherwise override every test's own.
for _name in ("COLUMNS", "LINES"):
    os.environ.pop(_name, None)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Move what importing and collecting built (~700,000 objects: litellm, statsmodels, ...)
    out of the collector's reach. It lives until the run ends anyway, and otherwise every full
    collection walks it: statsmodels' Holm calls `gc.collect()`, which took ~1 s each with that
    heap (13 s for one multiple-testing test). Objects the tests make are collected as usual."""
    gc.freeze()
