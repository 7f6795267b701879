"""Signed report manifests (Ed25519, with the `cryptography` package) and their offline check.

A rendered report is one or more files (``report.html``, ``report.json``, ...). Next to them
goes ``<stem>.manifest.json``: a manifest naming each file with its SHA-256 and size, the
audit, the result's SHA-256 and the signer's public key, plus an Ed25519 signature over the
canonical JSON of the manifest::

    signed bytes = json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=True)

`verify_report` needs nothing but the files (and, to pin the signer, the public key the API
serves at ``GET /v1/signing-key``): it checks the signature, every file's hash and size, and
for a JSON report that the result inside hashes to the manifest's result SHA-256 (the
canonical-JSON recipe of `reports.canonical`, recomputed here with the standard library). Each
mismatch is named: which file, which hash, expected and found.

The signing key comes from a PEM file (setting ``AUDITOR_SIGNING_KEY_PATH``; created there,
mode 0600, if the file does not exist yet) or, without that setting, is generated on first use
and stored in the database so that every API process and worker signs with the same key. A
file outside the database is the stronger choice: whoever can write the database could then
not also sign.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from auditor.schemas.canonical import canonical_json, canonical_sha256
from auditor.storage.repositories import signing as signing_rows
from auditor.storage.store import Store, utcnow

__all__ = [
    "MANIFEST_SCHEMA_VERSION",
    "MANIFEST_SUFFIX",
    "ManifestFile",
    "PublicKeyInfo",
    "ReportManifest",
    "SignedManifest",
    "VerificationResult",
    "key_id_of",
    "load_or_create_key",
    "load_public_key",
    "manifest_path_for",
    "public_key_info",
    "result_sha256_of_json",
    "sign_manifest",
    "verify_report",
    "write_signed",
]

MANIFEST_SCHEMA_VERSION: Final = "1.0"
MANIFEST_SUFFIX: Final = ".manifest.json"
ALGORITHM: Final = "Ed25519"
_DATABASE_KEY_NAME = "default"


# --- shapes -------------------------------------------------------------------------------------


class ManifestFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="File name, relative to the manifest's directory.")
    format: str = Field(description="html, md, json, pdf, or another kind of file.")
    sha256: str = Field(description="SHA-256 (hex) of the file's bytes.")
    bytes: int = Field(description="Size of the file.")


class ReportManifest(BaseModel):
    """What is signed: the files of a report and what they report on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal["1.0"] = MANIFEST_SCHEMA_VERSION
    kind: Literal["judge-auditor report manifest"] = "judge-auditor report manifest"
    audit_id: str | None = Field(description="The audit reported on.")
    tenant: str | None = Field(description="Tenant that owns the audit.")
    result_sha256: str = Field(
        description="SHA-256 of the canonical JSON of the analysis result (reports.canonical)."
    )
    input_sha256: str | None = Field(description="SHA-256 of the input bundle (provenance).")
    files: list[ManifestFile] = Field(description="Every file of the report.")
    created_at: str = Field(description="ISO-8601 UTC time of signing.")
    key_id: str = Field(
        description="Id of the signing key (SHA-256 of the raw public key, hex, first 16 digits)."
    )
    algorithm: Literal["Ed25519"] = ALGORITHM
    public_key: str = Field(description="The raw 32-byte Ed25519 public key, base64.")


class SignedManifest(BaseModel):
    """The manifest file: the manifest and its signature."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    manifest: ReportManifest
    signature: str = Field(description="Ed25519 signature of the canonical manifest, base64.")


class PublicKeyInfo(BaseModel):
    """The public half of the service's signing key (served by the API)."""

    model_config = ConfigDict(frozen=True)

    key_id: str = Field(description="SHA-256 of the raw public key, hex, first 16 digits.")
    algorithm: Literal["Ed25519"] = ALGORITHM
    public_key: str = Field(description="The raw 32-byte public key, base64.")
    public_key_pem: str = Field(description="The public key as PEM (SubjectPublicKeyInfo).")


class VerificationResult(BaseModel):
    """What `verify_report` found."""

    ok: bool = Field(description="Signature, every hash and every size match.")
    manifest: str = Field(description="Path of the manifest read.")
    key_id: str | None = Field(description="Key that signed the manifest (if it could be read).")
    checked: list[str] = Field(description="What was checked and matched.")
    problems: list[str] = Field(description="Exactly what does not match.")


# --- keys ---------------------------------------------------------------------------------------


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_of(key: Ed25519PublicKey) -> str:
    return hashlib.sha256(_raw_public(key)).hexdigest()[:16]


def _private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load_private(pem: bytes, where: str) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{where}: not an Ed25519 private key ({type(key).__name__})")
    return key


def _key_from_file(path: Path) -> Ed25519PrivateKey:
    if not path.exists():
        key = Ed25519PrivateKey.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        try:  # O_EXCL: of two processes creating it at once, one writes and both read it
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(_private_pem(key))
    return _load_private(path.read_bytes(), str(path))


def _key_from_database(store: Store) -> Ed25519PrivateKey:
    pem = signing_rows.find_private_pem(store, _DATABASE_KEY_NAME)
    if pem is not None:
        return _load_private(pem.encode(), "signing_keys")
    key = Ed25519PrivateKey.generate()
    # If another process stored its key first, that one is used (read back below).
    signing_rows.add_key_if_absent(
        store,
        name=_DATABASE_KEY_NAME,
        key_id=key_id_of(key.public_key()),
        private_pem=_private_pem(key).decode(),
        created_at=utcnow(),
    )
    pem = signing_rows.private_pem(store, _DATABASE_KEY_NAME)
    return _load_private(pem.encode(), "signing_keys")


def load_or_create_key(store: Store | None, path: str | Path | None) -> Ed25519PrivateKey:
    """The signing key: from ``path`` (created there if missing) or, without a path, the
    database's (generated on first use)."""
    if path:
        return _key_from_file(Path(path))
    if store is None:
        raise ValueError("signing key: give a key file path or a store to keep the key in")
    return _key_from_database(store)


def public_key_info(key: Ed25519PrivateKey | Ed25519PublicKey) -> PublicKeyInfo:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return PublicKeyInfo(
        key_id=key_id_of(public),
        public_key=base64.b64encode(_raw_public(public)).decode("ascii"),
        public_key_pem=public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii"),
    )


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """A trusted public key from a file: PEM, the raw key in base64, or the JSON the API
    serves (``{"public_key": ...}``)."""
    data = Path(path).read_bytes()
    text = data.decode("utf-8", errors="replace").strip()
    if text.startswith("{"):
        text = str(json.loads(text)["public_key"])
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_public_key(text.encode())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"{path}: not an Ed25519 public key")
        return key
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(text))


# --- signing ------------------------------------------------------------------------------------


def result_sha256_of_json(document: Any) -> str:
    """SHA-256 of a result document's canonical JSON (`auditor.schemas.canonical`)."""
    return canonical_sha256(document)


def _format_of(name: str) -> str:
    suffix = Path(name).suffix.lstrip(".").lower()
    return {"htm": "html", "markdown": "md"}.get(suffix, suffix or "file")


def sign_manifest(
    files: Mapping[str, bytes],
    *,
    key: Ed25519PrivateKey,
    result_sha256: str,
    audit_id: str | None,
    tenant: str | None,
    input_sha256: str | None = None,
    now: datetime | None = None,
) -> SignedManifest:
    """Sign a manifest of ``files`` (name -> bytes, names relative to the manifest)."""
    public = key.public_key()
    manifest = ReportManifest(
        audit_id=audit_id,
        tenant=tenant,
        result_sha256=result_sha256,
        input_sha256=input_sha256,
        files=[
            ManifestFile(
                name=name,
                format=_format_of(name),
                sha256=hashlib.sha256(data).hexdigest(),
                bytes=len(data),
            )
            for name, data in sorted(files.items())
        ],
        created_at=(now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        key_id=key_id_of(public),
        public_key=base64.b64encode(_raw_public(public)).decode("ascii"),
    )
    signature = key.sign(canonical_json(manifest.model_dump(mode="json")))
    return SignedManifest(manifest=manifest, signature=base64.b64encode(signature).decode("ascii"))


def manifest_sha256(signed: SignedManifest) -> str:
    """SHA-256 of the manifest file's content (what the audit trail records)."""
    return canonical_sha256(signed.model_dump(mode="json"))


def write_signed(
    directory: str | Path, files: Mapping[str, bytes], signed: SignedManifest, *, stem: str
) -> dict[str, Path]:
    """Write the files and ``<stem>.manifest.json`` into ``directory``; return name -> path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, data in files.items():
        path = directory / name
        path.write_bytes(data)
        paths[name] = path
    manifest = directory / f"{stem}{MANIFEST_SUFFIX}"
    manifest.write_text(signed.model_dump_json(indent=2) + "\n", encoding="utf-8")
    paths["manifest"] = manifest
    return paths


# --- verifying ----------------------------------------------------------------------------------


def manifest_path_for(path: str | Path) -> Path:
    """The manifest of a report file (``report.html`` -> ``report.manifest.json``), or the path
    itself if it is a manifest."""
    path = Path(path)
    if path.name.endswith(MANIFEST_SUFFIX):
        return path
    return path.with_name(path.name.split(".", 1)[0] + MANIFEST_SUFFIX)


def verify_report(
    path: str | Path, *, trusted_key: Ed25519PublicKey | None = None
) -> VerificationResult:
    """Check a report file (or a whole manifest) offline; every mismatch is named.

    Checks: the manifest parses; its signature verifies with its own public key; that key is
    ``trusted_key`` when one is given; every file listed (or only ``path`` if it is a report
    file) exists with the signed size and SHA-256; a JSON report's result hashes to the signed
    result SHA-256.
    """
    path = Path(path)
    manifest_path = manifest_path_for(path)
    checked: list[str] = []
    problems: list[str] = []

    def result(key_id: str | None) -> VerificationResult:
        return VerificationResult(
            ok=not problems,
            manifest=str(manifest_path),
            key_id=key_id,
            checked=checked,
            problems=problems,
        )

    if not manifest_path.exists():
        problems.append(f"{manifest_path.name}: no manifest next to the report (not signed)")
        return result(None)
    try:
        signed = SignedManifest.model_validate_json(manifest_path.read_bytes())
    except ValidationError as error:
        where = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<manifest>'}: {e['msg']}"
            for e in error.errors()[:5]
        )
        problems.append(f"{manifest_path.name}: not a valid signed manifest ({where})")
        return result(None)
    manifest = signed.manifest
    try:
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(manifest.public_key))
        public.verify(
            base64.b64decode(signed.signature), canonical_json(manifest.model_dump(mode="json"))
        )
    except (InvalidSignature, ValueError):
        problems.append(
            f"{manifest_path.name}: the signature does not verify with key {manifest.key_id}: "
            "the manifest was changed after it was signed (or signed by another key)"
        )
    else:
        if key_id_of(public) != manifest.key_id:
            problems.append(
                f"{manifest_path.name}: key_id {manifest.key_id} does not name the public key "
                f"in the manifest ({key_id_of(public)})"
            )
        else:
            checked.append(f"signature by key {manifest.key_id}")
    if trusted_key is not None:
        trusted_id = key_id_of(trusted_key)
        if trusted_id != manifest.key_id:
            problems.append(
                f"{manifest_path.name}: signed by key {manifest.key_id}, not by the trusted "
                f"key {trusted_id}"
            )
        else:
            checked.append(f"signing key is the trusted key {trusted_id}")

    listed = {entry.name: entry for entry in manifest.files}
    if path == manifest_path:
        entries = list(manifest.files)
    elif path.name in listed:
        entries = [listed[path.name]]
    else:
        problems.append(f"{path.name}: not listed in {manifest_path.name}")
        entries = []
    for entry in entries:
        file_path = manifest_path.parent / entry.name
        if not file_path.exists():
            problems.append(f"{entry.name}: listed in the manifest but missing")
            continue
        data = file_path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != entry.sha256:
            problems.append(
                f"{entry.name}: SHA-256 is {digest} but the signed manifest says {entry.sha256} "
                "(the file was changed after it was signed)"
            )
        else:
            checked.append(f"{entry.name}: SHA-256 {digest}")
        if len(data) != entry.bytes:
            problems.append(
                f"{entry.name}: {len(data)} bytes but the signed manifest says {entry.bytes}"
            )
        if entry.format == "json":
            try:
                document = json.loads(data)
            except (UnicodeDecodeError, json.JSONDecodeError) as error:
                problems.append(f"{entry.name}: not valid JSON ({error})")
                continue
            found = result_sha256_of_json(document)
            if found != manifest.result_sha256:
                problems.append(
                    f"{entry.name}: the result inside hashes to {found} but the signed "
                    f"manifest's result_sha256 is {manifest.result_sha256}"
                )
            else:
                checked.append(f"{entry.name}: result SHA-256 {found}")
    return result(manifest.key_id)
