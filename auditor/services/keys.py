"""Tenants and API keys.

A key looks like ``ja_<key id>_<secret>``: the key id (12 hex digits) is public and names the
key in listings and logs; the secret (32 random bytes, URL-safe base64) is shown once, when the
key is created. Only the SHA-256 of the whole key is stored. A salt or a slow hash would add
nothing: the secret has 256 bits of entropy, so the hash cannot be reversed by guessing.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime
from typing import Final

from pydantic import BaseModel, Field

from auditor.schemas.canonical import canonical_sha256
from auditor.services.trail import append_event
from auditor.storage.repositories import keys as key_rows
from auditor.storage.store import Store, utcnow
from auditor.storage.tables import ApiKeyRow

__all__ = [
    "KEY_PREFIX",
    "TENANT_PATTERN",
    "ApiKeyInfo",
    "Principal",
    "authenticate",
    "create_key",
    "list_keys",
    "revoke_key",
    "validate_tenant",
]

KEY_PREFIX: Final = "ja"
TENANT_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""Tenant names: 1 to 64 letters, digits, dots, dashes or underscores (the tenant columns
hold 64 characters)."""

_KEY_ID_HEX_DIGITS = 12
_SECRET_BYTES = 32
_KEY_SHAPE = re.compile(
    rf"{KEY_PREFIX}_([0-9a-f]{{{_KEY_ID_HEX_DIGITS}}})_([A-Za-z0-9_-]{{20,100}})"
)


class ApiKeyInfo(BaseModel):
    """An API key as listed (never the key itself)."""

    id: str = Field(description="Public key id (the part after `ja_` in the key).")
    tenant: str = Field(description="Tenant the key acts for.")
    name: str | None = Field(description="A label for people.")
    created_at: datetime = Field(description="When the key was created (UTC).")
    revoked_at: datetime | None = Field(description="When the key was revoked (UTC), if it was.")


class Principal(BaseModel):
    """Who is calling: the tenant and the key used."""

    tenant: str = Field(description="Tenant whose objects the caller may see.")
    key_id: str = Field(description="Id of the API key presented.")


def validate_tenant(tenant: str) -> str:
    """Return ``tenant`` if it is a valid tenant name; `ValueError` naming it otherwise."""
    if not TENANT_PATTERN.fullmatch(tenant):
        raise ValueError(
            f"tenant: must be 1-64 letters, digits, '.', '-' or '_' starting with a letter or "
            f"digit; got {tenant!r}"
        )
    return tenant


def _digest(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def _info(row: ApiKeyRow) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=row.id,
        tenant=row.tenant,
        name=row.name,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def create_key(store: Store, *, tenant: str, name: str | None = None) -> tuple[ApiKeyInfo, str]:
    """Create a key for ``tenant`` (creating the tenant if new); returns (info, raw key).

    The raw key is not stored anywhere: show it once.
    """
    validate_tenant(tenant)
    key_id = secrets.token_hex(_KEY_ID_HEX_DIGITS // 2)
    raw_key = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(_SECRET_BYTES)}"
    with store.transaction() as session:
        row = key_rows.add_key(
            session,
            key_id=key_id,
            tenant=tenant,
            name=name,
            key_sha256=_digest(raw_key),
            now=utcnow(),
        )
        append_event(
            session,
            tenant=tenant,
            action="key.created",
            object_type="api_key",
            object_id=key_id,
            object_sha256=canonical_sha256(_info(row).model_dump(mode="json")),
            detail={"name": name},
        )
    return _info(row), raw_key


def list_keys(store: Store, *, tenant: str | None = None) -> list[ApiKeyInfo]:
    """Every key (of one tenant, if given), oldest first; revoked keys included."""
    return [_info(row) for row in key_rows.list_keys(store, tenant=tenant)]


def revoke_key(store: Store, key_id: str) -> bool:
    """Revoke a key at once; False if there is no such key or it was already revoked."""
    with store.transaction() as session:
        tenant = key_rows.revoke_key(session, key_id, at=utcnow())
        if tenant is not None:
            append_event(
                session,
                tenant=tenant,
                action="key.revoked",
                object_type="api_key",
                object_id=key_id,
            )
        return tenant is not None


def authenticate(store: Store, raw_key: str) -> Principal | None:
    """The principal of a presented key, or None if it is malformed, unknown or revoked."""
    match = _KEY_SHAPE.fullmatch(raw_key)
    if match is None:
        return None
    row = key_rows.get_key(store, match.group(1))
    if row is None or row.revoked_at is not None:
        return None
    # Constant-time comparison: the stored digest must not leak through timing.
    if not hmac.compare_digest(row.key_sha256, _digest(raw_key)):
        return None
    return Principal(tenant=row.tenant, key_id=row.id)
