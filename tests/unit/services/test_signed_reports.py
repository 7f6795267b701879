"""Signed reports and the one result hash (issue 9, defects 1 and 2).

References: the signing key file itself (cryptography's Ed25519), the public key the API serves
at ``GET /v1/signing-key``, and the canonical-JSON recipe printed in every report, recomputed
here with the standard library (json + hashlib).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from auditor.api.main import create_app
from auditor.cli import app as cli_app
from auditor.ecosystem import Ecosystem, EcosystemConfig, FamilyConfig
from auditor.probes.affinity import analyze_affinity
from auditor.schemas.result import AffinityReport, AnalysisSettings
from auditor.services.signing import key_id_of
from auditor.services.trail import list_events, verify_objects
from auditor.storage.store import Store
from reports.canonical import result_sha256
from tests.support.settings import make_settings

runner = CliRunner()

NON_ASCII = "Évaluation « juges » — 評価"


def recipe_sha256(document: object) -> str:
    """The recipe every report prints: sorted keys, no spaces, ASCII (non-ASCII escaped)."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("ascii")).hexdigest()


@pytest.fixture(scope="module")
def analyzed() -> AffinityReport:
    """A real analysis of a small simulated world whose provenance holds non-ASCII text."""
    world = Ecosystem(
        EcosystemConfig(
            seed=4,
            n_items=30,
            families=[FamilyConfig(name=f, size=3) for f in ("a", "b", "c")],
            judges=["a-1", "b-1"],
        )
    )
    return analyze_affinity(
        world.bundle(),
        AnalysisSettings(n_bootstrap=0, n_permutations=0, min_candidates=4),
        provenance={"spec": {"name": NON_ASCII}},
    )


@pytest.fixture
def finished(tmp_path: Path, analyzed: AffinityReport) -> tuple[Store, str]:
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    store.migrate()
    audit, _ = store.create_audit(
        {"name": NON_ASCII}, tenant="acme", name="signed", evaluation_id=None, budget_usd=None
    )
    store.save_result(audit.id, analyzed.model_dump(mode="json"))
    store.update_audit(audit.id, status="succeeded", stage="done")
    return store, audit.id


def test_auditor_report_signs_with_the_key_file_the_api_serves(
    finished: tuple[Store, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defect 1: `auditor report` signed with the database's key and ignored
    AUDITOR_SIGNING_KEY_PATH, so verifying with the served key said MISMATCH."""
    store, audit_id = finished
    key_path = tmp_path / "signing.pem"
    key = Ed25519PrivateKey.generate()
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    monkeypatch.setenv("AUDITOR_SIGNING_KEY_PATH", str(key_path))
    out = tmp_path / "out"
    result = runner.invoke(
        cli_app, ["report", audit_id, "--format", "json", "--out", str(out), "--db", store.url]
    )
    assert result.exit_code == 0, result.output
    signed = json.loads((out / "report.manifest.json").read_text())
    assert signed["manifest"]["key_id"] == key_id_of(key.public_key())

    with TestClient(create_app(make_settings(database_url=store.url), store=store)) as client:
        served = client.get("/signing-key")
    assert served.status_code == 200
    assert served.json()["key_id"] == key_id_of(key.public_key())
    public = tmp_path / "served-key.json"
    public.write_text(served.text)
    verified = runner.invoke(
        cli_app, ["verify", str(out / "report.json"), "--public-key", str(public)]
    )
    assert verified.exit_code == 0, verified.output
    assert "MISMATCH" not in verified.output


def test_the_api_signs_with_the_key_of_the_settings_it_was_given(
    finished: tuple[Store, str], tmp_path: Path
) -> None:
    """Settings are built once and passed down: a key path given to `create_app` (not read
    from the environment by each router) is the key served and used."""
    store, _ = finished
    key_path = tmp_path / "given.pem"
    settings = make_settings(database_url=store.url, signing_key_path=str(key_path))
    with TestClient(create_app(settings, store=store)) as client:
        served = client.get("/signing-key").json()
    assert key_path.exists()
    with key_path.open("rb") as handle:
        key = serialization.load_pem_private_key(handle.read(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    assert served["key_id"] == key_id_of(key.public_key())


def test_report_trail_and_storage_agree_on_the_result_hash_of_non_ascii_text(
    finished: tuple[Store, str], analyzed: AffinityReport, tmp_path: Path
) -> None:
    """Defect 2: storage hashed with ensure_ascii=False, the reports with ASCII escapes, so on a
    result with non-ASCII text the trail's hash and the report's disagreed."""
    store, audit_id = finished
    document = json.loads(analyzed.model_dump_json())
    assert NON_ASCII in json.dumps(document, ensure_ascii=False)
    expected = recipe_sha256(document)

    assert result_sha256(analyzed) == expected
    assert store.save_result(audit_id, analyzed.model_dump(mode="json")) == expected

    out = tmp_path / "out"
    result = runner.invoke(
        cli_app, ["report", audit_id, "--format", "json", "--out", str(out), "--db", store.url]
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "report.manifest.json").read_text())["manifest"]
    assert manifest["result_sha256"] == expected
    assert recipe_sha256(json.loads((out / "report.json").read_text())) == expected


def test_the_trail_records_the_hash_the_report_prints(
    finished: tuple[Store, str], analyzed: AffinityReport
) -> None:
    """The `audit.finished` entry holds the stored result's hash: the report's recipe."""
    from auditor.services.governance import audit_finished

    store, audit_id = finished
    audit_finished(store, audit_id)  # what the pipeline records when the final status is set
    (event,) = list_events(store, tenant="acme", action="audit.finished")
    assert event.object_sha256 == recipe_sha256(json.loads(analyzed.model_dump_json()))
    assert verify_objects(store) == []
