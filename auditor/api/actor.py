"""Who acts, for the audit trail: the id of the API key a request presents.

A pure ASGI middleware binds `auditor.services.trail`'s actor for the request from the public part
of its bearer key (``ja_<key id>_<secret>``). It authenticates nothing: every endpoint that
records an event authenticates the key first (or answers 401 and records nothing), so the id
bound is the authenticated key's. Requests without a key act as ``system:api``.
"""

from __future__ import annotations

import re
from typing import Any, Final

from auditor.services.trail import bind_actor, reset_actor

__all__ = ["ANONYMOUS_ACTOR", "ActorMiddleware", "actor_of"]

ANONYMOUS_ACTOR: Final = "system:api"
_BEARER_KEY_ID = re.compile(rb"^\s*bearer\s+ja_([0-9a-f]{12})_\S+\s*$", re.IGNORECASE)


def actor_of(authorization: bytes | None) -> str:
    """The key id in an ``Authorization: Bearer ja_<id>_<secret>`` header, else anonymous."""
    match = _BEARER_KEY_ID.match(authorization or b"")
    return match.group(1).decode("ascii") if match else ANONYMOUS_ACTOR


class ActorMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        token = bind_actor(actor_of(headers.get(b"authorization")))
        try:
            await self.app(scope, receive, send)
        finally:
            reset_actor(token)
