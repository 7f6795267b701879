"""No provider secret is stored, logged, returned or rendered (issue 14, defect 1), and a model
gets exactly the credential its spec names or none (defect 7).

Real processes: two OpenAI-compatible stub servers on 127.0.0.1 (one checks keys and quotes the
key it was sent in its 401, as OpenAI's does; one takes any key), `auditor run`, `auditor
status` and `auditor report` as subprocesses, and the REST API on the same database. Then every
byte they produced is searched for the secrets: the SQLite file, the CLI's output and logs,
every report and every API response.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from auditor.api import create_app
from auditor.services.keys import create_key
from tests.stubs.openai_server import stub_server
from tests.support.cli import run_cli
from tests.support.settings import make_settings
from tests.support.stub_audits import QUESTIONS, TRUTHS, bundle_file
from workers.llm import NO_CREDENTIAL

WRONG_KEY = "sk-proj-" + secrets.token_hex(20)  # the process holds it; the provider rejects it
OPERATOR_KEY = "sk-operator-" + secrets.token_hex(20)  # OPENAI_API_KEY: no model names it
SERVER_KEY = "sk-server-" + secrets.token_hex(20)  # what the checking server wants


_cli = run_cli


def _auth_hash(key: str) -> str:
    return hashlib.sha256(f"Bearer {key}".encode()).hexdigest()[:12]


def test_a_rejected_key_is_nowhere_and_unnamed_models_get_no_credential(tmp_path: Path) -> None:
    database = tmp_path / "audit.sqlite"
    db = f"sqlite:///{database}"
    env = dict(
        os.environ,
        PYTHONPATH=str(Path(__file__).resolve().parents[2]),
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        STUB_API_KEY=WRONG_KEY,
        OPENAI_API_KEY=OPERATOR_KEY,
        AUDITOR_RETRY_BASE_DELAY="0.01",
        AUDITOR_RETRY_MAX_DELAY="0.05",
    )
    judges = ["judge-a", "judge-b"]
    candidates = ["cand-1", "cand-2", "cand-3", "cand-4"]
    open_config = {
        "truths": TRUTHS,
        "models": {name: {"style": "sentence"} for name in [*judges, *candidates]},
    }
    closed_config = {"api_key": SERVER_KEY, "models": {"judge-bad": {"style": "bare"}}}
    (tmp_path / "open").mkdir()
    (tmp_path / "closed").mkdir()
    with (
        stub_server(open_config, tmp_path / "open") as open_server,
        stub_server(closed_config, tmp_path / "closed") as closed_server,
    ):

        def model(name: str, server: Any, key_env: str | None = None) -> dict[str, Any]:
            spec = {"model": f"openai/{name}", "name": name, "api_base": server.url}
            return spec | ({"api_key_env": key_env} if key_env else {})

        spec = {
            "name": "secrets",
            "bundle": str(bundle_file(tmp_path / "bundle.json", [])),  # models: [] is fine
            "judges": [
                *(model(j, open_server) for j in judges),
                model("judge-bad", closed_server, "STUB_API_KEY") | {"provider": "closed"},
            ],
            # one call in flight at a time: the calls queued behind the 401 must not be sent
            "limits": {"closed": {"max_concurrency": 1}},
            "candidates": [model(c, open_server) for c in candidates],
            "sampling": {"verdict_max_tokens": 32},
            "analysis": {"n_bootstrap": 50, "n_permutations": 50, "min_candidates": 4},
        }
        spec_path = tmp_path / "spec.json"
        spec_path.write_text(json.dumps(spec))
        ran = _cli(
            "run", str(spec_path), "--db", db, "--out", str(tmp_path / "run"),
            "--format", "json", "--format", "md", "--format", "html",
            env=env, cwd=tmp_path,
        )  # fmt: skip
        assert ran.returncode == 0, ran.stdout + ran.stderr
        open_requests, closed_requests = open_server.requests(), closed_server.requests()
    audit_id = ran.stdout.split("audit ", 1)[1].split(":", 1)[0] if "audit " in ran.stdout else ""
    if not audit_id:
        audit_id = ran.stderr.split("audit ", 1)[1].split(":", 1)[0]
    status = _cli("status", audit_id, "--db", db, env=env, cwd=tmp_path)
    rendered = _cli(
        "report", audit_id, "--db", db, "--out", str(tmp_path / "again"),
        "--format", "html", "--format", "md", "--format", "json",
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert status.returncode == 0 and rendered.returncode == 0, status.stderr + rendered.stderr

    # Credentials: the model that names a variable got exactly its value, the others none.
    assert {r["auth"] for r in closed_requests} == {_auth_hash(WRONG_KEY)}
    assert len(closed_requests) == 1  # a 401 is permanent: not retried, the rest not sent
    assert {r["auth"] for r in open_requests} == {_auth_hash(NO_CREDENTIAL)}
    # The failure is reported by name and cause, with the key masked.
    failures = json.loads(status.stdout)["failures"]
    assert [f["model"] for f in failures] == ["judge-bad"]
    assert "AuthenticationError" in failures[0]["reason"]
    assert "Incorrect API key provided: Bearer [REDACTED]" in failures[0]["reason"]

    # The API, run without the key in its environment (it cannot mask what it does not hold).
    outputs: list[str] = [ran.stdout, ran.stderr, status.stdout, status.stderr]
    outputs += [rendered.stdout, rendered.stderr]
    saved = {name: os.environ.pop(name, None) for name in ("STUB_API_KEY", "OPENAI_API_KEY")}
    try:
        app = create_app(make_settings(database_url=db, broker_url="redis://127.0.0.1:1/0"))
        raw_key = create_key(app.state.store, tenant="default")[1]
        headers = {"Authorization": f"Bearer {raw_key}"}
        with TestClient(app) as client:
            paths = ["/v1/audits", f"/v1/audits/{audit_id}", f"/v1/audits/{audit_id}/result"]
            paths += [f"/v1/audits/{audit_id}/report?format={f}" for f in ("html", "md", "json")]
            for path in paths:
                response = client.get(path, headers=headers)
                assert response.status_code == 200, (path, response.text)
                outputs.append(response.text)
    finally:
        for name, value in saved.items():
            if value is not None:
                os.environ[name] = value
    stubs = (tmp_path / "open", tmp_path / "closed")  # the servers' own config holds a key
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.parent not in stubs]
    assert database in files and any(p.suffix == ".html" for p in files)
    for secret in (WRONG_KEY, OPERATOR_KEY, SERVER_KEY):
        for text in outputs:
            assert secret not in text
        for path in files:
            assert secret.encode() not in path.read_bytes(), path
    # and the 401 did reach the database, masked
    assert b"Incorrect API key provided: Bearer [REDACTED]" in database.read_bytes()
    assert len(QUESTIONS) == 5
