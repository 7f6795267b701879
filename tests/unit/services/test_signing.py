"""Signed report manifests (auditor.services.signing) and `auditor verify REPORT`: every changed
byte of a report file, of the manifest or of the signing key is named. References: hashlib for the
file hashes, cryptography's Ed25519 verification for the signature, the canonical-JSON recipe of
reports.canonical for the result hash."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from typer.testing import CliRunner

from auditor.cli import app as cli_app
from auditor.services.signing import (
    SignedManifest,
    key_id_of,
    load_or_create_key,
    public_key_info,
    sign_manifest,
    verify_report,
)
from auditor.services.trail import list_events, verify_store
from auditor.storage.store import Store
from reports.canonical import result_sha256
from tests.support.worlds import world_run

runner = CliRunner()


@pytest.fixture
def finished(tmp_path: Path) -> tuple[Store, str]:
    """A store with one finished audit whose result is a real analysis."""
    store = Store(f"sqlite:///{tmp_path / 'signing.sqlite'}")
    store.migrate()
    audit, _ = store.create_audit(
        {"name": "signed"}, tenant="acme", name="signed", evaluation_id=None, budget_usd=None
    )
    store.save_result(audit.id, world_run(0.8).report.model_dump(mode="json"))
    store.update_audit(audit.id, status="succeeded", stage="done")
    return store, audit.id


def render(store: Store, audit_id: str, out: Path, *formats: str) -> list[str]:
    args = ["schedules", "report", audit_id, "--out", str(out), "--db", store.url]
    for fmt in formats:
        args += ["--format", fmt]
    result = runner.invoke(cli_app, args)
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def verify(path: Path, *options: str) -> tuple[int, list[str]]:
    result = runner.invoke(cli_app, ["verify", str(path), *options])
    return result.exit_code, result.stdout.splitlines()


def flip_byte(path: Path, offset: int) -> tuple[str, str]:
    """Change one byte; returns (sha256 before, sha256 after)."""
    data = bytearray(path.read_bytes())
    before = hashlib.sha256(data).hexdigest()
    data[offset] = ord("X") if data[offset] != ord("X") else ord("Y")
    path.write_bytes(bytes(data))
    return before, hashlib.sha256(data).hexdigest()


def test_a_signed_report_verifies_and_its_manifest_says_what_it_covers(
    finished: tuple[Store, str], tmp_path: Path
) -> None:
    store, audit_id = finished
    out = tmp_path / "out"
    lines = render(store, audit_id, out, "html", "json")
    assert lines == [
        f"report.html: {out / 'report.html'}",
        f"report.json: {out / 'report.json'}",
        f"manifest: {out / 'report.manifest.json'}",
    ]
    signed = SignedManifest.model_validate_json((out / "report.manifest.json").read_bytes())
    manifest = signed.manifest
    assert manifest.audit_id == audit_id and manifest.tenant == "acme"
    for entry in manifest.files:
        data = (out / entry.name).read_bytes()
        assert entry.sha256 == hashlib.sha256(data).hexdigest() and entry.bytes == len(data)
    assert manifest.result_sha256 == result_sha256(world_run(0.8).report)  # reports' recipe
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(manifest.public_key))
    canonical = json.dumps(
        manifest.model_dump(mode="json"), sort_keys=True, separators=(",", ":")
    ).encode()
    public.verify(base64.b64decode(signed.signature), canonical)  # raises if it does not verify
    code, lines = verify(out / "report.html")
    assert code == 0, lines
    assert (
        lines[-1] == f"verified: signed by key {manifest.key_id} (pin the signer with --public-key)"
    )
    code, _ = verify(out / "report.manifest.json")  # the manifest checks every file
    assert code == 0
    rendered = list_events(store, tenant="acme", action="report.rendered")
    assert [e.object_id for e in rendered] == [audit_id]
    assert (
        rendered[0].object_sha256
        == hashlib.sha256(
            json.dumps(
                signed.model_dump(mode="json"), sort_keys=True, separators=(",", ":")
            ).encode()
        ).hexdigest()
    )
    assert verify_store(store).ok


def test_one_changed_byte_of_a_report_file_is_named(
    finished: tuple[Store, str], tmp_path: Path
) -> None:
    store, audit_id = finished
    out = tmp_path / "out"
    render(store, audit_id, out, "html")
    signed_hash, changed_hash = flip_byte(out / "report.html", 5000)
    code, lines = verify(out / "report.html")
    assert code == 1
    key_id = SignedManifest.model_validate_json((out / "report.manifest.json").read_bytes())
    assert lines == [
        f"MISMATCH: report.html: SHA-256 is {changed_hash} but the signed manifest says "
        f"{signed_hash} (the file was changed after it was signed)",
        f"ok: signature by key {key_id.manifest.key_id}",
    ]


def test_a_changed_value_in_the_json_report_breaks_its_hash_and_its_result_hash(
    finished: tuple[Store, str], tmp_path: Path
) -> None:
    store, audit_id = finished
    out = tmp_path / "out"
    render(store, audit_id, out, "json")
    path = out / "report.json"
    signed = SignedManifest.model_validate_json((out / "report.manifest.json").read_bytes())
    text = path.read_text()
    start = text.index('"partial_r": ') + len('"partial_r": ')
    end = start
    while text[end] in "-0123456789.eE":
        end += 1
    last = text[end - 1]  # the last digit of the first judge's partial r: one byte, valid JSON
    path.write_text(text[: end - 1] + ("1" if last != "1" else "2") + text[end:])
    changed = hashlib.sha256(path.read_bytes()).hexdigest()
    canonical = json.dumps(json.loads(path.read_bytes()), sort_keys=True, separators=(",", ":"))
    found = hashlib.sha256(canonical.encode()).hexdigest()
    code, lines = verify(path)
    assert code == 1
    assert lines[:2] == [
        f"MISMATCH: report.json: SHA-256 is {changed} but the signed manifest says "
        f"{signed.manifest.files[0].sha256} (the file was changed after it was signed)",
        f"MISMATCH: report.json: the result inside hashes to {found} but the signed manifest's "
        f"result_sha256 is {signed.manifest.result_sha256}",
    ]


def test_an_edited_manifest_fails_its_signature(
    finished: tuple[Store, str], tmp_path: Path
) -> None:
    store, audit_id = finished
    out = tmp_path / "out"
    render(store, audit_id, out, "md")
    manifest_path = out / "report.manifest.json"
    document = json.loads(manifest_path.read_text())
    document["manifest"]["audit_id"] = "someone-else"
    manifest_path.write_text(json.dumps(document, indent=2))
    code, lines = verify(out / "report.md")
    key_id = document["manifest"]["key_id"]
    assert code == 1
    assert lines[0] == (
        f"MISMATCH: report.manifest.json: the signature does not verify with key {key_id}: the "
        "manifest was changed after it was signed (or signed by another key)"
    )


def test_a_report_signed_by_another_key_is_refused_when_the_key_is_pinned(
    finished: tuple[Store, str], tmp_path: Path
) -> None:
    store, audit_id = finished
    out = tmp_path / "out"
    render(store, audit_id, out, "md")
    served = tmp_path / "signing-key.json"  # what GET /signing-key returns
    served.write_text(public_key_info(load_or_create_key(store, None)).model_dump_json())
    assert verify(out / "report.md", "--public-key", str(served))[0] == 0
    impostor = Ed25519PrivateKey.generate()
    data = (out / "report.md").read_bytes()
    forged = sign_manifest(
        {"report.md": data}, key=impostor, result_sha256="0" * 64, audit_id=audit_id, tenant="acme"
    )
    (out / "report.manifest.json").write_text(forged.model_dump_json())
    code, lines = verify(out / "report.md", "--public-key", str(served))
    trusted = public_key_info(load_or_create_key(store, None)).key_id
    assert code == 1
    assert lines[0] == (
        f"MISMATCH: report.manifest.json: signed by key {key_id_of(impostor.public_key())}, not "
        f"by the trusted key {trusted}"
    )


def test_missing_and_unlisted_files_are_named(finished: tuple[Store, str], tmp_path: Path) -> None:
    store, audit_id = finished
    out = tmp_path / "out"
    render(store, audit_id, out, "md", "json")
    (out / "report.md").unlink()
    result = verify_report(out / "report.manifest.json")
    assert result.problems == ["report.md: listed in the manifest but missing"]
    stray = out / "report.html"
    stray.write_text("<html></html>")
    assert verify_report(stray).problems == ["report.html: not listed in report.manifest.json"]
    lonely = tmp_path / "lonely.html"
    lonely.write_text("x")
    assert verify_report(lonely).problems == [
        "lonely.manifest.json: no manifest next to the report (not signed)"
    ]


def test_the_key_file_is_created_private_once_and_the_database_key_is_shared(
    tmp_path: Path,
) -> None:
    path = tmp_path / "keys" / "signing.pem"
    first = load_or_create_key(None, path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = load_or_create_key(None, path)
    assert key_id_of(first.public_key()) == key_id_of(again.public_key())
    url = f"sqlite:///{tmp_path / 'k.sqlite'}"
    store = Store(url)
    store.migrate()
    one = load_or_create_key(store, None)
    two = load_or_create_key(Store(url), None)  # another process, the same key
    assert key_id_of(one.public_key()) == key_id_of(two.public_key())
    assert key_id_of(one.public_key()) != key_id_of(first.public_key())


def test_the_api_serves_the_key_and_a_manifest_that_verifies_the_report_offline(
    tmp_path: Path,
) -> None:
    from fastapi.testclient import TestClient

    from auditor.api import create_app
    from auditor.api.settings import ApiSettings
    from auditor.services.keys import create_key

    app = create_app(
        ApiSettings(
            database_url=f"sqlite:///{tmp_path / 'api.sqlite'}", broker_url="redis://127.0.0.1:1/0"
        )
    )
    store: Store = app.state.store
    _, key = create_key(store, tenant="acme")
    _, other = create_key(store, tenant="globex")
    audit, _ = store.create_audit(
        {"name": "signed"}, tenant="acme", name="signed", evaluation_id=None, budget_usd=None
    )
    store.save_result(audit.id, world_run(0.8).report.model_dump(mode="json"))
    store.update_audit(audit.id, status="succeeded", stage="done")
    auth = {"Authorization": f"Bearer {key}"}
    with TestClient(app) as client:
        served = client.get("/signing-key")  # no key needed
        assert served.status_code == 200
        report = client.get(f"/v1/audits/{audit.id}/report", params={"format": "md"}, headers=auth)
        manifest = client.get(
            f"/v1/audits/{audit.id}/report/manifest", params={"format": "md"}, headers=auth
        )
        assert manifest.status_code == 200, manifest.text
        assert (
            client.get(
                f"/v1/audits/{audit.id}/report/manifest",
                headers={"Authorization": f"Bearer {other}"},
            ).status_code
            == 404
        )
    (tmp_path / f"audit-{audit.id}.md").write_bytes(report.content)
    (tmp_path / f"audit-{audit.id}.manifest.json").write_text(manifest.text)
    (tmp_path / "key.json").write_text(served.text)
    code, lines = verify(
        tmp_path / f"audit-{audit.id}.md", "--public-key", str(tmp_path / "key.json")
    )
    assert code == 0, lines
    assert served.json()["key_id"] == manifest.json()["manifest"]["key_id"]
    flip_byte(tmp_path / f"audit-{audit.id}.md", 100)
    assert verify(tmp_path / f"audit-{audit.id}.md")[0] == 1
    assert [e.action for e in list_events(store, tenant="acme", action="report.rendered")] == [
        "report.rendered"
    ]
