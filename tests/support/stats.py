"""Shared data and references for the tests of the partial correlation and its users."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pingouin


def correlated_data(seed: int, n: int, ties: bool = False) -> pd.DataFrame:
    """score depends on capa and accuracy, capa on accuracy: a realistic partial-r problem."""
    rng = np.random.default_rng(seed)
    accuracy = rng.uniform(0.3, 0.9, n)
    capa = 0.8 * accuracy + rng.normal(0, 0.1, n)
    score = 0.5 * accuracy + 0.3 * capa + rng.normal(0, 0.05, n)
    if ties:  # coarse values, so the spearman ranks have ties
        score, capa, accuracy = (np.round(v, 1) for v in (score, capa, accuracy))
    return pd.DataFrame({"score": score, "capa": capa, "accuracy": accuracy})


def pingouin_row(data: pd.DataFrame, method: str = "pearson") -> pd.Series:
    """The reference: pingouin.partial_corr(score, capa | accuracy) on ``data``."""
    return pingouin.partial_corr(
        data=data, x="score", y="capa", covar="accuracy", method=method
    ).iloc[0]


def p_column(row: pd.Series) -> float:
    """pingouin's p-value (``p_val``; ``p-val`` before pingouin 0.7)."""
    return float(row["p_val"] if "p_val" in row.index else row["p-val"])
