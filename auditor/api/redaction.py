"""Keeping the server's credentials out of every response.

Specs cannot hold credentials (they name environment variables instead), but a provider's
error message stored as a failure reason might quote a key. The values of the server's
credential-like environment variables, and passwords inside its service URLs, are masked in
the structured documents the API returns (so reports rendered from them are clean too), and a
last filter masks them in every response body, byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CREDENTIAL_NAME", "RedactionMiddleware", "Redactor"]

CREDENTIAL_NAME: Final = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
"""Environment variables whose names match this hold credentials."""

MIN_SECRET_LENGTH: Final = 8
"""Shorter values are not masked: they would match ordinary text (and are no real secret)."""

_MASK: Final = "*"


class Redactor:
    """Masks known secret values in text, documents and bytes (same length, so a masked body
    keeps its Content-Length)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first: a secret containing another is masked whole.
        unique = {s for s in secrets if len(s) >= MIN_SECRET_LENGTH}
        self.secrets: tuple[str, ...] = tuple(sorted(unique, key=len, reverse=True))
        self._encoded = tuple(s.encode() for s in self.secrets)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str], urls: Iterable[str] = ()) -> Redactor:
        values = [value for name, value in environ.items() if CREDENTIAL_NAME.search(name)]
        for url in urls:
            try:
                password = urlsplit(url).password
            except ValueError:
                password = None
            if password:
                values.append(password)
        return cls(values)

    def text(self, value: str) -> str:
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, _MASK * len(secret))
        return value

    def document(self, value: Any) -> Any:
        """A copy of a JSON-like document with every string masked."""
        if not self.secrets:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.document(k): self.document(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.document(v) for v in value]
        return value

    def body(self, value: bytes) -> bytes:
        for secret in self._encoded:
            if secret in value:
                value = value.replace(secret, _MASK.encode() * len(secret))
        return value


class RedactionMiddleware:
    """Masks secrets in response bodies. A secret split across two body chunks of a streamed
    response would pass; the API's responses are single bodies, and the documents behind
    them are redacted first anyway."""

    def __init__(self, app: ASGIApp, redactor: Redactor) -> None:
        self.app = app
        self.redactor = redactor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.redactor.secrets:
            await self.app(scope, receive, send)
            return

        async def masked_send(message: Message) -> None:
            if message["type"] == "http.response.body" and message.get("body"):
                message = {**message, "body": self.redactor.body(message["body"])}
            await send(message)

        await self.app(scope, receive, masked_send)
