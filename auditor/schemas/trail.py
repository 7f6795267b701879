"""An entry of the audit trail, as stored and as the API lists it (see `auditor.services.trail`
for the chain)."""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["TRAIL_SCHEMA_VERSION", "EventRecord"]

TRAIL_SCHEMA_VERSION: Final = "1"


class EventRecord(BaseModel):
    """One entry of the audit trail, as stored and as the API lists it."""

    model_config = ConfigDict(frozen=True)

    schema_version: str = Field(default=TRAIL_SCHEMA_VERSION, description="Entry format.")
    seq: int = Field(description="Position in the chain (1, 2, ...; no gaps).")
    at: str = Field(description="ISO-8601 UTC time of the action (microseconds).")
    tenant: str = Field(description="Tenant the action concerns.")
    actor: str = Field(
        description="Who acted: an API key id, `cli:<user>` or `system:<part>` (workers, beat)."
    )
    action: str = Field(description="What happened, e.g. `audit.finished`.")
    object_type: str = Field(description="Kind of object: key, evaluation, audit, schedule...")
    object_id: str = Field(description="Id of the object.")
    object_sha256: str | None = Field(
        description="SHA-256 of the object concerned (e.g. the stored result of a finished "
        "audit, an evaluation's content hash, a rendered report manifest)."
    )
    detail: dict[str, Any] = Field(description="Small facts about the action (no secrets).")
    prev_hash: str = Field(description="Hash of the previous entry (64 zeros for the first).")
    hash: str = Field(description="SHA-256 of this entry's canonical JSON (see module doc).")
