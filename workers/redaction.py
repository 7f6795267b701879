"""Secrets out of everything the model seam hands on: error texts, replies and log records.

Masked: every value (8 characters or more) of every environment variable of this process whose
name says it holds a credential (`CREDENTIAL_NAME`), the password of every URL held in the
environment, and anything shaped like a bearer token or a provider key (`TOKEN_SHAPES`) even
when no variable holds it (a provider quoting the key it was sent). The environment is read at
each call, so a key set after start-up is masked too.

>>> import os
>>> os.environ["DEMO_API_KEY"] = "hunter2-hunter2"
>>> redact("401: Incorrect API key provided: Bearer hunter2-hunter2 (key hunter2-hunter2)")
'401: Incorrect API key provided: Bearer [REDACTED] (key [REDACTED])'
>>> redact("auth failed for sk-proj-AbC123xyz789QQ")
'auth failed for [REDACTED]'
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any, Final
from urllib.parse import urlsplit

__all__ = ["CREDENTIAL_NAME", "MASK", "TOKEN_SHAPES", "install_log_redaction", "redact"]

CREDENTIAL_NAME: Final = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
"""Environment variables whose names match hold credentials (as in auditor/api/redaction.py,
which masks the API's responses; the worker cannot import the API layer)."""

MIN_SECRET_LENGTH: Final = 8
"""Shorter values are not masked: they would match ordinary text (and are no real secret)."""

MASK: Final = "[REDACTED]"

TOKEN_SHAPES: Final = (
    # "Bearer <token>" (what OpenAI-compatible servers quote back in a 401)
    re.compile(r"(\bBearer\s+)(?!\[REDACTED\])[^\s'\"`,;)\]}]+", re.IGNORECASE),
    # "api_key=..." / "x-api-key: ..." / "Authorization: ..." values
    re.compile(
        r"((?:api[_-]?key|x-api-key|authorization)[\"']?\s?[:=]\s?[\"']?)(?!Bearer\b|\[REDACTED\])[^\s'\",;]{8,}",
        re.IGNORECASE,
    ),
    # provider keys: sk-..., sk-proj-..., sk-ant-..., pk-/rk-, gsk_, xai-, hf_, ghp_, glpat-
    re.compile(r"()\b(?:sk|pk|rk|gsk|xai|hf|ghp|gho|glpat|AIza)[-_][A-Za-z0-9_\-]{8,}"),
)
"""Token-shaped text, masked wherever it appears (group 1 is kept: the label before it)."""


_cache: tuple[Any, list[str]] = ((), [])


def _secrets() -> list[str]:
    """The secrets of the environment as it is now: recomputed when it changed since the last
    call (compared as the raw mapping CPython keeps, which costs microseconds, not a decode of
    every variable per call)."""
    global _cache
    raw = getattr(os.environ, "_data", None)
    snapshot = tuple(raw.items()) if isinstance(raw, dict) else tuple(os.environ.items())
    if snapshot == _cache[0]:
        return _cache[1]
    values = _scan()
    _cache = (snapshot, values)
    return values


def _scan() -> list[str]:
    values = []
    for name, value in os.environ.items():
        if CREDENTIAL_NAME.search(name) and len(value) >= MIN_SECRET_LENGTH:
            values.append(value)
        if "://" in value and "@" in value:
            try:
                password = urlsplit(value).password
            except ValueError:
                password = None
            if password and len(password) >= MIN_SECRET_LENGTH:
                values.append(password)
    return sorted(set(values), key=len, reverse=True)  # a secret containing another: whole


def redact(text: str) -> str:
    """``text`` with every secret of this process and every token-shaped string masked."""
    for secret in _secrets():
        if secret in text:
            text = text.replace(secret, MASK)
    for shape in TOKEN_SHAPES:
        text = shape.sub(lambda match: match.group(1) + MASK, text)
    return text


def redact_optional(text: str | None) -> str | None:
    return None if text is None else redact(text)


class _RedactingRecordFactory:
    """Builds every log record of the process with its message (and traceback) redacted, so no
    handler (Celery's, litellm's, the root's) can write a secret."""

    def __init__(self, factory: Any) -> None:
        self.factory = factory

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = self.factory(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the logging module's business
            return record
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return record


def install_log_redaction() -> None:
    """Redact every log record made in this process from now on (idempotent)."""
    factory = logging.getLogRecordFactory()
    if not isinstance(factory, _RedactingRecordFactory):
        logging.setLogRecordFactory(_RedactingRecordFactory(factory))
