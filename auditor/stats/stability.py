"""Stability of binary outcomes across prompt templates (Zhou et al., Nature 2024).

Each row is a unit (an item, or a judged answer), each column a template; the cells are 1/0
(correct / incorrect, or a verdict). Only units seen under every template enter.

- Flip share: the share of units whose outcome is not the same under all templates.
- Accuracy SD across templates: the sample standard deviation (ddof = 1) of the column means.
- Cochran's Q (Cochran 1950), whether the templates' success rates differ: with K columns,
  column totals C_j, row totals R_i and N = ΣR_i,
  Q = (K − 1) [K ΣC_j² − N²] / [K N − ΣR_i²], χ² with K − 1 degrees of freedom.
  Equals ``statsmodels.stats.contingency_tables.cochrans_q``. Undefined when no unit flips.

Example: rows [[1, 1], [1, 0], [1, 0], [0, 0]] → flip share 0.5, accuracy SD ≈ 0.354,
Q = 2.0, p ≈ 0.157.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from auditor.stats.distributions import chi2_sf

__all__ = ["TemplateStability", "template_stability"]


@dataclass(frozen=True)
class TemplateStability:
    """Flip share, accuracy SD and Cochran's Q of a units x templates 0/1 table."""

    n_units: int
    n_templates: int
    flips: int
    flip_share: float | None
    rates: tuple[float, ...]
    """Success rate under each template (column means)."""
    rate_sd: float | None
    q: float | None
    p_value: float | None
    reason: str | None = None


def template_stability(outcomes: np.ndarray | list[list[int]]) -> TemplateStability:
    """Stability of 0/1 outcomes (rows: units, columns: templates); see the module docstring.

    >>> s = template_stability([[1, 1], [1, 0], [1, 0], [0, 0]])
    >>> s.flip_share, round(s.q, 3), round(s.p_value, 3)
    (0.5, 2.0, 0.157)
    """
    table = np.asarray(outcomes)
    if table.ndim != 2:
        raise ValueError(f"outcomes must be a units x templates table; got shape {table.shape}")
    if not np.isin(table, (0, 1)).all():
        raise ValueError("outcomes must hold only 0 and 1")
    n_units, k = table.shape
    if k < 2:
        raise ValueError(f"outcomes need at least two templates (columns); got {k}")
    if n_units == 0:
        return TemplateStability(
            0, k, 0, None, (), None, None, None, "no unit seen under every template"
        )
    table = table.astype(np.float64)
    rows = table.sum(axis=1)
    columns = table.sum(axis=0)
    flips = int(np.count_nonzero((rows > 0) & (rows < k)))
    rates = tuple(float(c) / n_units for c in columns)
    sd = float(np.std(rates, ddof=1))
    total = float(rows.sum())
    denominator = k * total - float(np.sum(rows * rows))
    if flips == 0 or denominator <= 0:
        return TemplateStability(
            n_units, k, flips, flips / n_units, rates, sd, None, None, "no unit flips"
        )
    q = (k - 1) * (k * float(np.sum(columns * columns)) - total * total) / denominator
    p = float(chi2_sf(q, k - 1))
    return TemplateStability(n_units, k, flips, flips / n_units, rates, sd, float(q), p)
