"""The dependencies every router shares: settings, storage, the broker, the current tenant.

`main.create_app` puts the real objects on ``app.state``; tests replace any of them with
``app.dependency_overrides`` (for example a dispatcher that records instead of sending).
"""

from __future__ import annotations

from typing import Annotated, TypeVar
from urllib.parse import unquote, unquote_to_bytes

import orjson
from fastapi import Depends, HTTPException, Path, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ValidationError

from auditor.api.dispatch import Dispatcher
from auditor.api.redaction import Redactor
from auditor.schemas.nul import NUL_MESSAGE, nul_paths
from auditor.services.keys import Principal, authenticate
from auditor.settings import Settings
from auditor.storage.store import Store

__all__ = [
    "AuditId",
    "DispatcherDep",
    "EvaluationId",
    "RawBody",
    "RedactorDep",
    "SettingsDep",
    "StoreDep",
    "TenantDep",
    "current_principal",
    "current_tenant",
    "get_dispatcher",
    "get_redactor",
    "get_settings",
    "get_store",
    "known_query_only",
    "strict_json",
]

Model = TypeVar("Model", bound=BaseModel)


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def get_dispatcher(request: Request) -> Dispatcher:
    dispatcher: Dispatcher = request.app.state.dispatcher
    return dispatcher


def get_redactor(request: Request) -> Redactor:
    redactor: Redactor = request.app.state.redactor
    return redactor


ID_PATTERN = r"^[0-9a-f]{32}$"
EvaluationId = Annotated[str, Path(pattern=ID_PATTERN, description="Evaluation id.")]
AuditId = Annotated[str, Path(pattern=ID_PATTERN, description="Audit id.")]

SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
DispatcherDep = Annotated[Dispatcher, Depends(get_dispatcher)]
RedactorDep = Annotated[Redactor, Depends(get_redactor)]

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key from `auditor keys create`: `Authorization: Bearer ja_...`.",
)


def current_principal(
    store: StoreDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> Principal:
    """The caller, from its bearer key; 401 if the key is missing, unknown or revoked."""
    if credentials is None:
        raise HTTPException(
            401,
            "an API key is required (Authorization: Bearer <key>)",
            {"WWW-Authenticate": "Bearer"},
        )
    principal = authenticate(store, credentials.credentials)
    if principal is None:
        raise HTTPException(
            401,
            "invalid or revoked API key",
            {"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return principal


def current_tenant(principal: Annotated[Principal, Depends(current_principal)]) -> str:
    return principal.tenant


TenantDep = Annotated[str, Depends(current_tenant)]


async def _raw_body(request: Request) -> bytes:
    return await request.body()  # read once by FastAPI already; cached on the request


RawBody = Annotated[bytes, Depends(_raw_body)]
"""The request body as received (within the body size limit)."""


def strict_json(raw: bytes, model: type[Model]) -> Model:
    """Validate a JSON body strictly: as its JSON Schema says, without coercions such as
    ``false`` or ``"1"`` for a number (FastAPI's own validation of the body is lax), and
    without NUL characters, which PostgreSQL cannot store in text."""
    if b"\\u0000" in raw:
        paths = nul_paths(orjson.loads(raw))
        if paths:
            raise RequestValidationError(
                [{"type": "string_nul", "loc": ("body", *loc), "msg": NUL_MESSAGE} for loc in paths]
            )
    try:
        return model.model_validate_json(raw, strict=True)
    except ValidationError as error:
        raise RequestValidationError(
            [{**detail, "loc": ("body", *detail["loc"])} for detail in error.errors()]
        ) from None


_QUERY_NAMES: dict[int, frozenset[str]] = {}


def _declared_query(route: object) -> frozenset[str]:
    """Query parameters of a route and of every dependency it has (cached per route)."""
    known = _QUERY_NAMES.get(id(route))
    if known is not None:
        return known
    names: set[str] = set()
    pending = [getattr(route, "dependant", None)]
    while pending:
        dependant = pending.pop()
        if dependant is not None:
            names.update(param.alias for param in dependant.query_params)
            pending.extend(dependant.dependencies)
    _QUERY_NAMES[id(route)] = frozenset(names)  # routes live as long as the process
    return _QUERY_NAMES[id(route)]


def _not_utf8(query_string: bytes) -> list[tuple[str, str]]:
    """The (name, value) pairs of a raw query string whose percent-decoded bytes are not UTF-8
    (Starlette would turn them into U+FFFD and carry on)."""
    found = []
    for part in query_string.split(b"&"):
        name, _, value = part.partition(b"=")
        for raw in (name, value):
            try:
                unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
            except UnicodeDecodeError:
                found.append(
                    (
                        unquote(name.decode("latin-1").replace("+", " "), errors="replace"),
                        value.decode("latin-1"),
                    )
                )
                break
    return found


async def known_query_only(request: Request) -> None:
    """422 for query parameters an endpoint does not take: a misspelt filter such as
    ``?stauts=failed`` must not be ignored silently. So is a parameter that is not UTF-8."""
    not_utf8 = _not_utf8(request.scope.get("query_string", b""))
    if not_utf8:
        raise RequestValidationError(
            [
                {
                    "type": "string_unicode",
                    "loc": ("query", name),
                    "msg": f"not valid UTF-8 once percent-decoded: {value[:100]!r}",
                }
                for name, value in not_utf8
            ]
        )
    allowed = _declared_query(request.scope.get("route"))
    unknown = sorted(set(request.query_params) - allowed)
    problems = [
        {
            "type": "extra_forbidden",
            "loc": ("query", name),
            "msg": "unknown query parameter"
            + (f"; this endpoint takes {', '.join(sorted(allowed))}" if allowed else ""),
            "input": request.query_params.get(name),
        }
        for name in unknown
    ]
    problems += [
        {"type": "string_nul", "loc": ("query", name), "msg": NUL_MESSAGE}
        for name, value in request.query_params.multi_items()
        if name in allowed and "\x00" in value
    ]
    if problems:
        raise RequestValidationError(problems)
