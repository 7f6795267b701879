"""The unit lane: no Redis, no PostgreSQL, no network (this conftest imports neither client).

A storage test here runs on a SQLite file; the integration lane runs the storage tests on
PostgreSQL as well.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'auditor.sqlite'}"


def pytest_collection_finish(session: pytest.Session) -> None:
    """The lane's promise, checked: collecting the unit tests (alone) imported no Redis client."""
    if "tests.integration.conftest" in sys.modules:
        return  # both lanes in one run: the integration lane brings Redis along
    if "redis" in sys.modules:
        raise pytest.UsageError(
            "the unit lane imported redis while collecting: a unit test or the code it "
            "imports needs a Redis client"
        )
