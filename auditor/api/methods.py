"""Which methods a URL takes: ``OPTIONS`` answers them, a method it does not take is a 405
naming them all.

Starlette matches routes one by one, so a 405 for ``PUT /v1/audits`` would list only the
methods of the first route with that path (``POST``), and ``OPTIONS`` is a 405 too. This pure
ASGI middleware asks every route whether it matches the path and answers with the union of their
methods: ``OPTIONS`` gets 204 with ``Allow`` (no key needed: it reveals only what the OpenAPI
document says), another method no route takes a 405 ``ErrorBody`` with the full ``Allow``.
"""

from __future__ import annotations

from typing import Any, Final

from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match

__all__ = ["AllowedMethodsMiddleware", "allowed_methods"]


_METHODS: Final = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(routes: list[BaseRoute], scope: dict[str, Any]) -> set[str]:
    """The methods some route takes at ``scope``'s path (empty: no such path). Each method is
    asked of the routes themselves, so included routers and path parameters match as they do
    when the request is served."""
    return {
        method
        for method in _METHODS
        if any(route.matches({**scope, "method": method})[0] is Match.FULL for route in routes)
    }


class AllowedMethodsMiddleware:
    def __init__(self, app: Any, *, routes: list[BaseRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if any(route.matches(scope)[0] is Match.FULL for route in self.routes):
            await self.app(scope, receive, send)  # the common case: some route takes it
            return
        methods = allowed_methods(self.routes, scope)
        if not methods:  # no such path: the router's 404
            await self.app(scope, receive, send)
            return
        allow = ", ".join(sorted(methods | {"OPTIONS"}))
        response: Response
        if scope["method"] == "OPTIONS":
            response = Response(status_code=204, headers={"Allow": allow})
        else:
            body = {"detail": f"method {scope['method']} not allowed; allowed: {allow}"}
            response = JSONResponse(
                {**body, "problems": []}, status_code=405, headers={"Allow": allow}
            )
        await response(scope, receive, send)
