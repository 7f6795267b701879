"""Error responses: every error is an `ErrorBody`; validation errors list every problem's path."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from auditor.api.schemas import ErrorBody, ProblemOut
from auditor.schemas.bundle import BundleError

__all__ = ["BAD_BODY", "ERROR_RESPONSES", "TOO_LARGE", "install_error_handlers", "request_problems"]

log = logging.getLogger(__name__)

BAD_BODY: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The body could not be read (e.g. not UTF-8)."}
}
TOO_LARGE: dict[int | str, dict[str, Any]] = {
    413: {
        "description": "The body is over the size limit. A body whose Content-Length is over "
        "the limit is refused before it is read, in plain text; a streamed body that grows "
        "over it, with an `ErrorBody`.",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}},
            "text/plain": {"schema": {"type": "string"}},
        },
    }
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No API key, or an unknown or revoked one."},
    404: {"model": ErrorBody, "description": "No such object for this tenant."},
    422: {"model": ErrorBody, "description": "Invalid request; `problems` names every field."},
}


def _path(loc: tuple[Any, ...] | list[Any]) -> str:
    where, *rest = loc or ("body",)
    path = "" if where == "body" else str(where)
    for part in rest:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "<body>"


def request_problems(error: RequestValidationError) -> list[ProblemOut]:
    problems = []
    for detail in error.errors():
        message = str(detail.get("msg", "invalid"))
        context = detail.get("ctx") or {}
        loc = tuple(detail.get("loc", ()))
        if detail.get("type") == "json_invalid":
            # loc is ("body", character offset): name the offset, not a list index
            message = f"not valid JSON at character {loc[-1]}: {context.get('error', message)}"
            loc = loc[:1]
        problems.append(ProblemOut(path=_path(loc), message=message))
    return problems


def _error(status: int, detail: str, problems: list[ProblemOut] | None = None, **kw: Any) -> Any:
    body = ErrorBody(detail=detail, problems=problems or [])
    return JSONResponse(body.model_dump(mode="json"), status_code=status, **kw)


async def _on_request_validation(_request: Request, error: Exception) -> Any:
    assert isinstance(error, RequestValidationError)
    return _error(422, "invalid request", request_problems(error))


async def _on_bundle_error(_request: Request, error: Exception) -> Any:
    assert isinstance(error, BundleError)
    problems = [ProblemOut(path=p.path, message=p.message) for p in error.problems]
    return _error(422, "invalid request", problems)


async def _on_http_error(_request: Request, error: Exception) -> Any:
    assert isinstance(error, HTTPException)
    if error.status_code < 400 or error.status_code in (204, 304):  # pragma: no cover
        return JSONResponse(None, status_code=error.status_code, headers=error.headers)
    return _error(error.status_code, str(error.detail), headers=error.headers)


async def _on_unexpected(request: Request, error: Exception) -> Any:
    # The text of an unexpected error may hold internals (URLs, SQL): it goes to the log only.
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return _error(500, "internal error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_request_validation)
    app.add_exception_handler(BundleError, _on_bundle_error)
    app.add_exception_handler(HTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
