"""How numbers are shown: one rounding rule per kind of number, shared by every format.

Undefined values (``None``, NaN, infinities) are shown as an em dash, never as "None" or "nan";
the tables attach the reason beside it (see `reports.content`).
"""

from __future__ import annotations

import math

__all__ = [
    "MISSING",
    "P_DECIMALS",
    "VALUE_DECIMALS",
    "exact",
    "format_ci",
    "format_count",
    "format_p",
    "format_value",
    "is_missing",
]

MISSING = "—"
"""What an undefined value looks like in every format."""

VALUE_DECIMALS = 3
"""Correlations, CAPA, scores, accuracies and coefficients: three decimals."""

P_DECIMALS = 3
"""p-values at or above 10^-P_DECIMALS: three decimals; smaller ones: two significant digits."""

_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def is_missing(value: float | None) -> bool:
    return value is None or not math.isfinite(value)


def format_value(value: float | None, decimals: int = VALUE_DECIMALS) -> str:
    """``0.52549`` -> ``"0.525"``; undefined -> ``"—"``. Negative zero shows as ``0.000``."""
    if value is None or is_missing(value):
        return MISSING
    text = f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def format_p(value: float | None) -> str:
    """``0.0341`` -> ``"0.034"``; ``1.23e-05`` -> ``"1.2 × 10⁻⁵"``; undefined -> ``"—"``."""
    if value is None or is_missing(value):
        return MISSING
    if value == 0 or value >= 10**-P_DECIMALS:
        return f"{value:.{P_DECIMALS}f}"
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa} × 10{str(int(exponent)).translate(_SUPERSCRIPT)}"


def format_ci(interval: tuple[float, float] | None, decimals: int = VALUE_DECIMALS) -> str:
    """``(0.2464, 0.7231)`` -> ``"[0.246, 0.723]"``; undefined -> ``"—"``."""
    if interval is None or any(is_missing(v) for v in interval):
        return MISSING
    low, high = interval
    return f"[{format_value(low, decimals)}, {format_value(high, decimals)}]"


def format_count(value: int | None) -> str:
    """``72000`` -> ``"72,000"``."""
    return MISSING if value is None else f"{value:,}"


def exact(value: object) -> str | None:
    """The unrounded value as text (``repr`` of floats round-trips exactly), for data attributes."""
    if value is None:
        return None
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    if isinstance(value, tuple | list):
        parts = [exact(v) for v in value]
        shown = [p for p in parts if p is not None]
        return " ".join(shown) if len(shown) == len(parts) else None
    return str(value)
