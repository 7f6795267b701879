"""NUL characters: valid in JSON strings, refused by PostgreSQL in text columns.

The API refuses them with a 422 naming where they are, instead of failing at the database.
"""

from __future__ import annotations

from typing import Final

__all__ = ["NUL_MESSAGE", "nul_paths"]

NUL_MESSAGE: Final = "must not contain NUL characters (\\u0000)"


def nul_paths(document: object, at: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Where a decoded JSON document holds a string (value or key) with a NUL character.

    >>> nul_paths({"a": ["ok", "b\\x00d"], "c\\x00": 1})
    [('a', 1), ('c\\x00',)]
    """
    if isinstance(document, str):
        return [at] if "\x00" in document else []
    found: list[tuple[str | int, ...]] = []
    if isinstance(document, dict):
        for key, value in document.items():
            found += [(*at, key)] if "\x00" in key else nul_paths(value, (*at, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += nul_paths(value, (*at, index))
    return found
