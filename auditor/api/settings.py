"""Settings of the HTTP service: the shared `Settings` plus what only the API reads."""

from __future__ import annotations

from pydantic import Field

from auditor.settings import Settings

__all__ = ["DEFAULT_MAX_STREAM_BYTES", "ApiSettings"]

DEFAULT_MAX_STREAM_BYTES = 8 * 1024**3


class ApiSettings(Settings):
    """Read from the environment like `Settings` (prefix ``AUDITOR_``)."""

    max_stream_bytes: int = Field(
        default=DEFAULT_MAX_STREAM_BYTES,
        ge=0,
        description="Largest streamed JSONL upload (POST /v1/evaluations:stream), in bytes. "
        "The upload is never held in memory, so this may be far larger than max_body_bytes.",
    )
    allowed_api_bases: list[str] = Field(
        default_factory=list,
        description="API base URLs that audit specs submitted over the API may name (a JSON "
        'list, e.g. ["http://llama:8080/v1"]). Any other api_base is refused: litellm sends '
        "provider keys from the server's environment to the model's API base.",
    )
