"""Input checks shared by the statistics modules: each names the argument and the bad value."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["count", "finite_vector", "generator"]


def finite_vector(name: str, values: Any, n: int | None = None, of: str = "x") -> np.ndarray:
    """``values`` as a finite float64 vector (of length ``n`` if given, the length of ``of``),
    else ValueError naming ``name`` and the first bad value."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: must be numbers; got {values!r}") from None
    if array.ndim != 1:
        raise ValueError(f"{name}: must be one-dimensional; got shape {array.shape}")
    if n is not None and array.size != n:
        raise ValueError(f"{name}: has {array.size} values but {of} has {n}")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise ValueError(f"{name}[{int(bad[0])}]: must be finite; got {float(array[bad[0]])!r}")
    return array


def count(name: str, value: Any) -> int:
    """``value`` as a non-negative int (numpy integers accepted, bools refused)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        shown = int(value) if isinstance(value, np.integer) else value
        raise ValueError(f"{name}: must be a non-negative integer; got {shown!r}")
    return int(value)


def generator(rng: Any) -> np.random.Generator:
    """``rng`` itself if it is a numpy Generator, else TypeError."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng: must be a numpy.random.Generator; got {type(rng).__name__}")
    return rng
