"""The bad-input set of issue 14: requests a client may send by mistake or on purpose, each of
which the API must refuse with a 4xx naming what is wrong, never a 500, storing nothing.

Each case is a request (method, URL, body, headers) and the problem path the 422 must name (or
``None`` where the answer is not a 422: 404/405/413 name no field). The unit lane runs the set
on SQLite, the integration lane on PostgreSQL, where a string over its column's length is an
error of the database itself (SQLite stores it silently)."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from auditor.api import create_app
from auditor.api.deps import get_dispatcher
from auditor.services.keys import create_key
from auditor.storage.store import Store
from auditor.storage.tables import Base
from tests.support.api import JUDGES, SIMULATION_SPEC, RecordingDispatcher, jsonl, world_bundle
from tests.support.settings import make_settings

__all__ = [
    "BadRequest",
    "api_client",
    "bad_requests",
    "check_refused",
    "field_path",
    "send",
    "stored_rows",
]

LONG = 300
"""Over every 200-character name column."""
VERY_LONG = 5000


@dataclass(frozen=True)
class BadRequest:
    name: str
    method: str
    url: str
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    expect_status: int = 422
    expect_path: str | None = None
    """A path the 422's problems must name (prefix match, e.g. ``items[0].id``)."""


def _bundle(edit: Callable[[dict[str, Any]], None]) -> bytes:
    document = world_bundle(n_items=6).model_dump(mode="json", exclude_none=True)
    edit(document)
    return json.dumps(document).encode()


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        target: Any = document
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return edit


_EXTRA_ITEM: dict[str, Any] = {"id": "extra", "question": "?", "options": ["a", "b"], "gold": 0}


def _append(section: str, record: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        assert len(document[section]) == 6
        document[section].append(record)

    return edit


def _raw_number(edit_path: tuple[Any, ...], literal: str) -> bytes:
    """A bundle whose number at ``edit_path`` is the JSON text ``literal`` (``Infinity``,
    ``1e400``), which `json.dumps` would not write."""
    marker = 123456.789
    text = _bundle(_set(edit_path, marker)).decode()
    assert text.count(repr(marker)) == 1
    return text.replace(repr(marker), literal).encode()


def _spec(**changes: Any) -> bytes:
    spec = json.loads(json.dumps(SIMULATION_SPEC))
    for dotted, value in changes.items():
        target = spec
        *parents, last = dotted.split("__")
        for key in parents:
            target = target[int(key)] if key.isdigit() else target[key]
        target[last] = value
    return json.dumps(spec).encode()


def _schedule(**changes: Any) -> bytes:
    body = {"name": "nightly", "cron": "0 3 * * *", "spec": SIMULATION_SPEC, **changes}
    return json.dumps(body).encode()


def _stream_with_long_id_at_the_end(lines: int) -> bytes:
    """About ``lines`` JSONL records, valid but for an item id over its limit in the last."""
    body = bytearray(jsonl(world_bundle(n_items=6)))
    filler_item = {"kind": "item", "question": "?", "options": ["a", "b"], "gold": 0}
    for index in range(max(0, lines - body.count(b"\n") - 1)):
        body += json.dumps({**filler_item, "id": f"filler-{index}"}).encode() + b"\n"
    body += json.dumps({**filler_item, "id": "x" * LONG}).encode() + b"\n"
    return bytes(body)


def bad_requests(*, stream_lines: int = 100_000) -> Iterator[BadRequest]:
    """The bad-input set (issue 14, item 3)."""
    json_type = {"Content-Type": "application/json"}
    evaluations = "/v1/evaluations"
    for size in (LONG, VERY_LONG):
        for name, section, record, where in (
            ("item id", "items", {**_EXTRA_ITEM, "id": "x" * size}, "items[6].id"),
            ("item category", "items", {**_EXTRA_ITEM, "category": "x" * size}, "items[6]"),
            ("model name", "models", {"name": "x" * size}, "models[6].name"),
            ("model provider", "models", {"name": "m", "provider": "x" * size}, "models[6]"),
            ("model family", "models", {"name": "m", "family": "x" * size}, "models[6]"),
        ):
            yield BadRequest(
                f"bundle {name} of {size} characters",
                "POST",
                evaluations,
                _bundle(_append(section, record)),
                json_type,
                expect_path=where,
            )
    for literal in ("Infinity", "-Infinity", "NaN", "1e400"):
        for name, path, where in (
            ("output probability", ("outputs", 0, "probs", 0), "outputs[0].probs"),
            ("item difficulty", ("items", 0, "difficulty"), "items[0].difficulty"),
            ("model params", ("models", 0, "params"), "models[0].params"),
        ):
            yield BadRequest(
                f"bundle {name} {literal}",
                "POST",
                evaluations,
                _raw_number(path, literal),
                json_type,
                expect_path=where,
            )
    small_stream = jsonl(world_bundle(n_items=6))
    for name, stream in (
        (
            f"stream of {stream_lines} lines, an overlong item id on the last",
            _stream_with_long_id_at_the_end(stream_lines),
        ),
        (
            "stream with Infinity in a probability",
            small_stream.replace(b'"probs": [', b'"probs": [Infinity, ', 1),
        ),
        (
            "stream with 1e400 as a difficulty",
            small_stream.replace(b'"gold": ', b'"difficulty": 1e400, "gold": ', 1),
        ),
    ):
        yield BadRequest(name, "POST", f"{evaluations}:stream", stream, expect_path="line ")
    yield BadRequest(
        "invalid UTF-8 in the query",
        "POST",
        f"{evaluations}?name=%FF%FEab",
        _bundle(lambda document: None),
        json_type,
        expect_path="query.name",
    )
    yield BadRequest(
        "invalid UTF-8 in a query filter",
        "GET",
        "/v1/audits?status=%C3%28",
        expect_path="query.status",
    )
    yield BadRequest(
        "invalid UTF-8 in a streamed upload's name",
        "POST",
        f"{evaluations}:stream?name=%E2%82",
        jsonl(world_bundle(n_items=6)),
        expect_path="query.name",
    )
    yield BadRequest("a page size of 1e400", "GET", f"{evaluations}?limit=1e400", None)
    yield BadRequest("an offset of 10**30", "GET", f"/v1/audits?offset={10**30}", None)
    yield BadRequest(
        "an evaluation name of 300 characters",
        "POST",
        f"{evaluations}?name={'n' * LONG}",
        _bundle(lambda document: None),
        json_type,
        expect_path="query.name",
    )
    audits = "/v1/audits"
    for name, changes, where in (
        ("a spec name of 500 characters", {"name": "s" * 500}, "name"),
        ("a judge display name of 201 characters", {"judges__0__name": "j" * 201}, "judges[0]"),
        ("a judge model of 5000 characters", {"judges__0__model": "sim/" + "m" * VERY_LONG}, ""),
        ("a candidate family of 300 characters", {"candidates__0__family": "f" * LONG}, ""),
        ("a budget of 1e400", {"budget_usd": "__1e400__"}, "budget_usd"),
        ("a temperature of NaN", {"sampling": {"temperature": "__NaN__"}}, "sampling"),
        ("simulated items 10**12", {"simulation__n_items": 10**12}, "simulation.n_items"),
        ("a simulated family of 10**9 models", {"simulation__families__0__size": 10**9}, ""),
        ("a simulated family name of 300", {"simulation__families__0__name": "f" * LONG}, ""),
        ("simulated noise of 1e400", {"simulation__noise": "__1e400__"}, "simulation.noise"),
        (
            "a simulated world over its memory bound (1,000 models x 20,000 items x 4)",
            {
                "simulation__families": [{"name": f"f{i}", "size": 100} for i in range(10)],
                "simulation__n_items": 20_000,
                "simulation__judges": ["f0-1"],
            },
            "simulation",
        ),
        ("10**12 bootstrap resamples", {"analysis__n_bootstrap": 10**12}, "analysis"),
        ("10**30 permutations", {"analysis__n_permutations": 10**30}, "analysis"),
        ("a negative analysis seed", {"analysis__seed": -1}, "analysis.seed"),
    ):
        body = _spec(**changes).replace(b'"__1e400__"', b"1e400").replace(b'"__NaN__"', b"NaN")
        yield BadRequest(name, "POST", audits, body, json_type, expect_path=where)
    yield BadRequest(
        "an Idempotency-Key of 300 characters",
        "POST",
        audits,
        _spec(),
        {**json_type, "Idempotency-Key": "k" * LONG},
        expect_path="header.Idempotency-Key",
    )
    schedules = "/v1/schedules"
    long_spec_name = {**SIMULATION_SPEC, "name": "s" * 500}
    for name, changes, where in (
        ("a schedule name of 300 characters", {"name": "s" * LONG}, "name"),
        ("a cron of 5000 characters", {"cron": "*" * VERY_LONG}, "cron"),
        ("a time zone of 300 characters", {"timezone": "T" * LONG}, "timezone"),
        ("a webhook URL of 5000 characters", {"webhook_url": "https://" + "h" * VERY_LONG}, ""),
        ("a schedule spec name of 500 characters", {"spec": long_spec_name}, "spec.name"),
    ):
        body = _schedule(**changes)
        yield BadRequest(name, "POST", schedules, body, json_type, expect_path=where)
    judge = JUDGES[0]
    yield BadRequest(
        "a judge display name with a lone surrogate",
        "POST",
        audits,
        _spec(judges__0__name=judge).replace(judge.encode(), b"\\ud800x"),
        json_type,
        expect_path="",
    )


def stored_rows(store: Store) -> dict[str, int]:
    """Rows in every table of the store, except the API keys the test itself created."""
    counts: dict[str, int] = {}
    with store.session() as session:
        for table in Base.metadata.sorted_tables:
            if table.name in ("api_keys", "alembic_version"):
                continue
            counts[table.name] = int(session.scalar(select(func.count()).select_from(table)) or 0)
    return counts


def field_path(path: str) -> str:
    """A problem's path without the record's description: ``outputs[0] (model='m').probs``
    is ``outputs[0].probs``."""
    return re.sub(r" \([^)]*\)", "", path)


@contextlib.contextmanager
def api_client(database_url: str) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """The API on ``database_url`` (broker seam recording), a client that turns server errors
    into 500 responses instead of raising, and one tenant's auth header."""
    settings = make_settings(
        database_url=database_url,
        broker_url="redis://127.0.0.1:1/0",
        max_stream_bytes=64_000_000,
    )
    app = create_app(settings)
    dispatcher = RecordingDispatcher()
    app.dependency_overrides[get_dispatcher] = lambda: dispatcher
    key = create_key(app.state.store, tenant="acme")[1]
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, {"Authorization": f"Bearer {key}"}
    app.state.store.engine.dispose()


def check_refused(client: TestClient, auth: dict[str, str], case: BadRequest) -> None:
    """``case`` is answered with its 4xx naming its field, and no row is stored."""
    store = client.app.state.store  # type: ignore[attr-defined]
    before = stored_rows(store)
    response = send(client, case, auth)
    assert response.status_code == case.expect_status, response.text[:2000]
    if case.expect_path is not None:
        paths = [p["path"] for p in response.json()["problems"]]
        assert any(field_path(p).startswith(case.expect_path) for p in paths), paths
    assert stored_rows(store) == before


def send(client: httpx.Client | Any, request: BadRequest, auth: dict[str, str]) -> httpx.Response:
    response: httpx.Response = client.request(
        request.method,
        request.url,
        content=request.content,
        headers={**auth, **request.headers},
    )
    return response
