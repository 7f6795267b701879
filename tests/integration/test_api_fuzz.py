"""Property-based fuzzing of every endpoint from the OpenAPI schema (schemathesis).

Requests are generated from /openapi.json (valid and invalid ones) and sent in process to the
ASGI app, with a valid tenant key. Storage is the local PostgreSQL, the deployment's database:
it refuses more than SQLite does (NUL characters in text, for one), so 5xx hide less. Path ids
are sometimes replaced by ids of objects that exist, so the handlers behind the 404s are
reached too. Every response must be
no 5xx, and must match the schema: documented status code, content type, headers and body.
The fuzzing itself must send enough requests to reach every route: checked on the requests it
sent (its own fixture), so the test passes or fails alone, in any order.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from auditor.api import create_app
from auditor.api.deps import get_dispatcher
from auditor.ecosystem import Ecosystem, EcosystemConfig
from auditor.services.audits import finalize_audit
from auditor.services.keys import create_key
from auditor.storage.store import utcnow
from tests.support.services import postgres_database
from tests.support.settings import make_settings

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
EXAMPLES_PER_OPERATION = 30
VALID_ID = re.compile(r"[0-9a-f]{32}")

# The JSONL and zip uploads are raw bytes on the wire (their contents are tested in test_api.py).
schemathesis.serializer.alias("application/x-ndjson", "application/octet-stream")
schemathesis.serializer.alias("application/zip", "application/octet-stream")
MIN_REQUESTS = 300


class RecordingDispatcher:
    def __init__(self) -> None:
        self.started: list[str] = []

    def start_audit(self, audit_id: str) -> None:
        self.started.append(audit_id)

    def ping(self) -> None:
        return None


@dataclass
class FuzzTarget:
    app: FastAPI
    headers: dict[str, str]
    evaluation_ids: list[str]
    audit_ids: list[str]
    reportable_audit_ids: list[str]


@pytest.fixture(scope="module")
def target() -> Iterator[FuzzTarget]:
    with postgres_database() as database_url:
        # Commits need not wait for the disk here (nothing must survive a crash of a test).
        yield from _target(f"{database_url}?options=-csynchronous_commit%3Doff")


def _target(database_url: str) -> Iterator[FuzzTarget]:
    settings_ = make_settings(
        database_url=database_url,
        broker_url="redis://127.0.0.1:1/0",
        max_body_bytes=1_000_000,
        max_stream_bytes=2_000_000,
    )
    app = create_app(settings_)
    app.dependency_overrides[get_dispatcher] = RecordingDispatcher
    store = app.state.store
    _, key = create_key(store, tenant="fuzz")
    headers = {"Authorization": f"Bearer {key}"}
    families = [{"name": "atlas", "size": 3}, {"name": "boreal", "size": 3}]
    config = EcosystemConfig.model_validate({"seed": 4, "n_items": 12, "families": families})
    evaluation_id = store.add_evaluation(Ecosystem(config).bundle(), tenant="fuzz", name="seed")
    with TestClient(app) as client:
        spec: dict[str, Any] = {
            "evaluation_id": evaluation_id,
            "judges": [{"model": "openai/a", "name": "atlas-1"}],
            "candidates": [
                {"model": f"openai/{n}", "name": n}
                for n in ("atlas-2", "atlas-3", "boreal-1", "boreal-2", "boreal-3")
            ],
            "analysis": {"n_bootstrap": 50, "n_permutations": 50, "min_candidates": 4},
        }
        queued = client.post("/v1/audits", json=spec, headers=headers).json()["id"]
        finished = client.post(
            "/v1/audits", json=dict(spec, name="finished"), headers=headers
        ).json()["id"]
    audit = store.get_audit(finished)
    finalize_audit(store, audit)
    store.update_audit(finished, stage="done", status="succeeded", finished_at=utcnow())
    yield FuzzTarget(app, headers, [evaluation_id], [queued, finished], [queued])
    store.engine.dispose()  # so the database can be dropped


@pytest.fixture(scope="module")
def fuzz_schema(target: FuzzTarget) -> Any:
    schema = schemathesis.openapi.from_asgi("/openapi.json", target.app)
    # Hypothesis draws the requests. Schemathesis' coverage phase (every boundary and every
    # mutation of every field, about 3,000 more requests and a minute here) is for long runs:
    #   schemathesis run http://127.0.0.1:8000/openapi.json -H "Authorization: Bearer $KEY"
    schema.config.phases.coverage.enabled = False

    @schema.hook("flatmap_path_parameters")
    def known_ids(context: Any, path_parameters: dict[str, Any]) -> Any:
        """Sometimes aim at objects that exist. Rendering HTML or PDF takes seconds, so the
        report endpoints meet only audits without a result (rendering is tested directly)."""
        if not isinstance(path_parameters, dict) or not all(
            isinstance(v, str) and VALID_ID.fullmatch(v) for v in path_parameters.values()
        ):
            return st.just(path_parameters)  # a negative case stays negative
        path = context.operation.path if context.operation is not None else ""
        choices = [path_parameters]
        if "evaluation_id" in path_parameters:
            choices += [{**path_parameters, "evaluation_id": i} for i in target.evaluation_ids]
        if "audit_id" in path_parameters:
            ids = target.reportable_audit_ids if "/report" in path else target.audit_ids
            choices += [{**path_parameters, "audit_id": i} for i in ids]
        return st.sampled_from(choices)

    @schema.hook("filter_query")
    def on_the_wire(context: Any, query: Any) -> bool:
        """A query parameter whose value is an empty list is not sent at all (no client
        writes `?a` for []): such a case tests nothing, and when that parameter is its only
        violation `negative_data_rejection` reports the valid request the server received as
        accepted negative data (hypothesis 6.155 drew one for GET /v1/audits)."""
        return not isinstance(query, dict) or all(value != [] for value in query.values())

    return schema


schema = schemathesis.pytest.from_fixture("fuzz_schema")


def requests_by_route(app: FastAPI) -> dict[str, float]:
    """Requests answered so far, by method and route template, as the app's own request
    metrics count them (read from its registry: reading sends no request)."""
    counts: dict[str, float] = {}
    for metric in app.state.http_metrics.requests.collect():
        for sample in metric.samples:
            if sample.name == "auditor_http_requests_total":
                route = f"{sample.labels['method']} {sample.labels['route']}"
                counts[route] = counts.get(route, 0.0) + sample.value
    return counts


@pytest.fixture
def fuzzing_reaches_every_route(target: FuzzTarget) -> Iterator[None]:
    """Checked after the fuzzing test that uses it, on the requests that test sent (the
    difference of the app's counts, so nothing another test sent counts): at least
    MIN_REQUESTS, and every route of the schema reached."""
    before = requests_by_route(target.app)
    yield
    after = requests_by_route(target.app)
    fuzzed = {
        route: n - before.get(route, 0.0)
        for route, n in after.items()
        if route != "GET /openapi.json" and n > before.get(route, 0.0)
    }
    print(f"fuzzing sent {sum(fuzzed.values()):.0f} requests: {fuzzed}")
    assert sum(fuzzed.values()) >= MIN_REQUESTS, fuzzed
    schema_routes = {
        f"{method.upper()} {path}"
        for path, methods in target.app.openapi()["paths"].items()
        for method in methods
    }
    assert schema_routes <= set(fuzzed), schema_routes - set(fuzzed)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure comes with its curl
    suppress_health_check=list(HealthCheck),
)
def test_every_endpoint_answers_within_its_schema(
    case: Any, target: FuzzTarget, fuzzing_reaches_every_route: None
) -> None:
    case.call_and_validate(headers=target.headers, checks=CHECKS)
