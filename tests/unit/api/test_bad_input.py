"""The bad-input set (issue 14, item 3) against the API on SQLite: every request is refused
with a 4xx naming the field (never a 5xx) and nothing is stored. The integration lane sends the
same set to the API on PostgreSQL, which enforces column lengths itself."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.support.bad_input import BadRequest, api_client, bad_requests, check_refused

STREAM_LINES = 100_000
CASES = [
    pytest.param(
        case,
        id=case.name,
        # a few seconds to stream; scripts/test --fast leaves it out, CI runs it
        marks=[pytest.mark.slow] if case.name.startswith(f"stream of {STREAM_LINES} lines") else [],
    )
    for case in bad_requests(stream_lines=STREAM_LINES)
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, str]]]:
    path = tmp_path_factory.mktemp("bad-input") / "api.sqlite"
    with api_client(f"sqlite:///{path}") as served:
        yield served


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_a_4xx_naming_the_field_and_stores_nothing(
    served: tuple[TestClient, dict[str, str]], case: BadRequest
) -> None:
    client, auth = served
    check_refused(client, auth, case)


def test_options_and_405_name_every_allowed_method(
    served: tuple[TestClient, dict[str, str]],
) -> None:
    client, auth = served
    for url, methods in (
        ("/v1/audits", {"GET", "POST"}),
        ("/v1/evaluations", {"GET", "POST"}),
        ("/v1/schedules", {"GET", "POST"}),
        ("/v1/audits/0123456789abcdef0123456789abcdef", {"GET"}),
        ("/healthz", {"GET"}),
    ):
        response = client.options(url)  # no key needed: nothing but the OpenAPI document's facts
        assert response.status_code in (200, 204), (url, response.status_code)
        allowed = {m.strip() for m in response.headers.get("allow", "").split(",") if m.strip()}
        assert allowed == methods | {"OPTIONS"}, (url, response.headers)
        wrong = client.put(url, headers=auth)  # a method no route of this path takes
        assert wrong.status_code == 405, (url, wrong.status_code)
        assert set(wrong.headers["allow"].replace(" ", "").split(",")) == allowed, url
        assert "not allowed" in wrong.json()["detail"]
    assert client.options("/v1/nowhere").status_code == 404
