"""The one canonical JSON of the project and its SHA-256.

Every hash of a document (an audit result, an input bundle, a trail entry, a signed manifest,
a stored object) is the SHA-256 of this encoding, so a reader can recompute any of them from the
JSON with the standard library alone (the recipe is printed in every report)::

    json.dumps(document, sort_keys=True, separators=(",", ":"))   # ASCII: non-ASCII escaped
    hashlib.sha256(text.encode("ascii")).hexdigest()

A pydantic model is first turned into its JSON document (`json_document`, i.e.
``json.loads(model.model_dump_json())``): NaN and infinities become ``null`` there, as in every
JSON file the project writes, and the canonical encoding refuses them anywhere else.

Example::

    >>> canonical_json({"b": 1, "a": "é"})
    b'{"a":"\\\\u00e9","b":1}'
    >>> canonical_sha256({})[:12]
    '44136fa355b3'
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel

__all__ = ["canonical_json", "canonical_sha256", "json_document"]


def canonical_json(document: Any) -> bytes:
    """Sorted keys, no spaces, ASCII (non-ASCII characters escaped); NaN is refused.

    Raises ValueError for a float that JSON cannot hold (NaN, infinity)."""
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def canonical_sha256(document: Any) -> str:
    """SHA-256 (hex) of `canonical_json` of ``document``."""
    return hashlib.sha256(canonical_json(document)).hexdigest()


def json_document(model: BaseModel) -> Any:
    """The JSON document of a model exactly as its JSON file holds it (NaN -> null)."""
    return json.loads(model.model_dump_json())
