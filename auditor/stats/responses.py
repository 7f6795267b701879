"""Models' multiple-choice answers as arrays: the stacked layout every similarity reads.

Pure numpy (no project imports): `auditor.schemas.bundle.response_matrix` and
`auditor.schemas.columns.response_matrix_from_columns` build it from a bundle.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Final

import numpy as np

__all__ = ["PROBABILITY_TOLERANCE", "ResponseMatrix"]

PROBABILITY_TOLERANCE: Final = 1e-6
"""Probabilities must sum to 1 within this tolerance (unless normalization is requested)."""


@dataclass(frozen=True, eq=False)
class ResponseMatrix:
    """Models' multiple-choice answers in the stacked layout of SCIENCE.md section 1.

    Each model is one row of ``probs`` holding its probability vectors for all items side by
    side (item ``x`` occupies columns ``offsets[x]:offsets[x + 1]``). Missing outputs are rows of
    zeros with ``present`` False. A model whose outputs lack ``probs`` anywhere is
    discrete-only (``probabilistic`` False): its row holds one-hot vectors of its choices.
    """

    models: tuple[str, ...]
    items: tuple[str, ...]
    offsets: Annotated[np.ndarray, "int64 (n_items + 1,)"]
    gold: Annotated[np.ndarray, "int64 (n_items,), option index within the item"]
    probs: Annotated[np.ndarray, "float64 (n_models, n_columns)"]
    choice: Annotated[np.ndarray, "int64 (n_models, n_items), -1 where missing"]
    present: Annotated[np.ndarray, "bool (n_models, n_items)"]
    probabilistic: Annotated[np.ndarray, "bool (n_models,)"]

    @property
    def option_counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def gold_columns(self) -> np.ndarray:
        """Column of each item's gold option in the stacked layout."""
        return self.offsets[:-1] + self.gold

    def index(self, model: str) -> int:
        """Row of ``model``; `KeyError` if it is not in the matrix."""
        try:
            return self._rows[model]
        except KeyError:
            raise KeyError(f"model {model!r} is not in the response matrix") from None

    @cached_property
    def _rows(self) -> dict[str, int]:
        return {name: row for row, name in enumerate(self.models)}


def segment_argmax(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Index of the maximum within each consecutive segment of ``values`` (ties to the lowest).

    ``values`` is 1-D or 2-D (segments run along the last axis); every length must be >= 1.
    """
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    segment_max = np.maximum.reduceat(values, starts, axis=-1)
    is_max = values == np.repeat(segment_max, lengths, axis=-1)
    position = np.arange(values.shape[-1], dtype=np.int64)
    first = np.minimum.reduceat(np.where(is_max, position, values.shape[-1]), starts, axis=-1)
    return np.asarray(first - starts, dtype=np.int64)
