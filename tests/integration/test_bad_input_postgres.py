"""The bad-input set (issue 14, item 3) against the API on PostgreSQL, which refuses a string
longer than its column (SQLite stores it): every request is a 4xx naming the field, never a 5xx,
and nothing is stored."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.support.bad_input import BadRequest, api_client, bad_requests, check_refused
from tests.support.services import postgres_database

CASES = list(bad_requests(stream_lines=100_000))


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[TestClient, dict[str, str]]]:
    with postgres_database() as url, api_client(url) as served:
        yield served


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_on_postgres_is_a_4xx_and_stores_nothing(
    served: tuple[TestClient, dict[str, str]], case: BadRequest
) -> None:
    client, auth = served
    check_refused(client, auth, case)
